using System.Diagnostics.Metrics;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Runs an action on the thread that makes the next measurement of one instrument of one limiter after
/// <see cref="Arm"/> (the library's listeners run synchronously on the measuring thread): the hook behind
/// <see cref="ActorHold"/> and the throwing listener of the wedge test. Once per arming.
/// </summary>
internal sealed class ArmedMeasurement : IDisposable
{
    private readonly MeterListener _listener = new();
    private int _armed;

    /// <param name="limiterName">The limiter's metric name.</param>
    /// <param name="instrumentName">The instrument whose next measurement runs <paramref name="onArmed"/>.</param>
    /// <param name="onArmed">What runs on the measuring thread; it may block it or throw into it.</param>
    public ArmedMeasurement(string limiterName, string instrumentName, Action onArmed)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ActorQueueTelemetry.Name && instrument.Name == instrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((_, _, tags, _) => OnMeasurement(tags, limiterName, onArmed));
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) => OnMeasurement(tags, limiterName, onArmed));
        _listener.Start();
    }

    /// <summary>The next measurement runs the action.</summary>
    public void Arm() => Volatile.Write(ref _armed, 1);

    /// <summary>Disarms without running the action.</summary>
    public void Disarm() => Volatile.Write(ref _armed, 0);

    public void Dispose() => _listener.Dispose();

    private void OnMeasurement(ReadOnlySpan<KeyValuePair<string, object?>> tags, string limiterName, Action onArmed)
    {
        var mine = false;
        foreach (var tag in tags)
        {
            mine |= tag.Key == ActorQueueTelemetry.LimiterNameTag && Equals(tag.Value, limiterName);
        }

        if (mine && Interlocked.Exchange(ref _armed, 0) == 1)
        {
            onArmed();
        }
    }
}
