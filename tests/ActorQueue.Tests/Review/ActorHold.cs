using System.Diagnostics.Metrics;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Holds whichever thread next moves one limiter's running count (the library's up-down counter, whose listeners run
/// synchronously on the thread that moves it), or another of its instruments, until the test lets it go: a way to stop
/// a partitioned limiter's actor in the middle of a message, so that what the test sends meanwhile waits in its mailbox.
/// One hold at a time; disposing lets every held thread go.
/// </summary>
internal sealed class ActorHold : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly string _limiterName;
    private readonly MeterListener _listener = new();
    private readonly SemaphoreSlim _held = new(0);
    private ManualResetEventSlim _next = new(false);
    private ManualResetEventSlim? _holding;
    private int _armed;

    /// <param name="limiterName">The limiter's metric name.</param>
    /// <param name="instrumentName">The instrument whose next measurement holds its thread.</param>
    public ActorHold(string limiterName, string instrumentName = ActorQueueTelemetry.LimiterRunning)
    {
        _limiterName = limiterName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ActorQueueTelemetry.Name && instrument.Name == instrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((_, _, tags, _) => OnMeasurement(tags));
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) => OnMeasurement(tags));
        _listener.Start();
    }

    /// <summary>The next measurement of the instrument holds its thread.</summary>
    public void Arm()
    {
        Volatile.Write(ref _next, new ManualResetEventSlim(false));
        Volatile.Write(ref _armed, 1);
    }

    /// <summary>The managed thread id of the thread held last.</summary>
    public int HeldThreadId { get; private set; }

    /// <summary>Waits until a thread is held; fails the test after a bounded wait.</summary>
    public void WaitHeld(string what) => Assert.True(_held.Wait(Patience), $"nothing was held: {what}");

    /// <summary>Lets the held thread go.</summary>
    public void Release() => Volatile.Read(ref _holding)?.Set();

    public void Dispose()
    {
        Volatile.Write(ref _armed, 0);
        Release();
        Volatile.Read(ref _next).Set();
        _listener.Dispose();
    }

    private void OnMeasurement(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var mine = false;
        foreach (var tag in tags)
        {
            mine |= tag.Key == ActorQueueTelemetry.LimiterNameTag && Equals(tag.Value, _limiterName);
        }

        if (!mine || Interlocked.Exchange(ref _armed, 0) == 0)
        {
            return;
        }

        var gate = Volatile.Read(ref _next);
        Volatile.Write(ref _holding, gate);
        HeldThreadId = Environment.CurrentManagedThreadId;
        _held.Release();
        gate.Wait(Patience);
    }
}
