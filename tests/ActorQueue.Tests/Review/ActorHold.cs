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

    private readonly ArmedMeasurement _hook;
    private readonly SemaphoreSlim _held = new(0);
    private ManualResetEventSlim _next = new(false);
    private ManualResetEventSlim? _holding;

    /// <param name="limiterName">The limiter's metric name.</param>
    /// <param name="instrumentName">The instrument whose next measurement holds its thread.</param>
    public ActorHold(string limiterName, string instrumentName = ActorQueueTelemetry.LimiterRunning) =>
        _hook = new ArmedMeasurement(limiterName, instrumentName, Hold);

    /// <summary>The next measurement of the instrument holds its thread.</summary>
    public void Arm()
    {
        Volatile.Write(ref _next, new ManualResetEventSlim(false));
        _hook.Arm();
    }

    /// <summary>The managed thread id of the thread held last.</summary>
    public int HeldThreadId { get; private set; }

    /// <summary>Waits until a thread is held; fails the test after a bounded wait.</summary>
    public void WaitHeld(string what) => Assert.True(_held.Wait(Patience), $"nothing was held: {what}");

    /// <summary>Lets the held thread go.</summary>
    public void Release() => Volatile.Read(ref _holding)?.Set();

    public void Dispose()
    {
        _hook.Disarm();
        Release();
        Volatile.Read(ref _next).Set();
        _hook.Dispose();
    }

    private void Hold()
    {
        var gate = Volatile.Read(ref _next);
        Volatile.Write(ref _holding, gate);
        HeldThreadId = Environment.CurrentManagedThreadId;
        _held.Release();
        gate.Wait(Patience);
    }
}
