using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// Records the library's limiter instruments for one limiter name: the sum of each counter (a rejection's under
/// "name:reason"), the last value of each gauge. Dispose to stop listening.
/// </summary>
internal sealed class LimiterMetrics : IDisposable
{
    private readonly string _limiterName;
    private readonly ConcurrentDictionary<string, double> _values = new();
    private readonly MeterListener _listener = new();

    public LimiterMetrics(string limiterName)
    {
        _limiterName = limiterName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ActorQueueTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (Mine(tags, out string? _))
            {
                _values[instrument.Name] = value;
            }
        });
        _listener.Start();
    }

    /// <summary>A counter's sum or a gauge's last value; 0 when nothing was recorded.</summary>
    public double Value(string key) => _values.TryGetValue(key, out var value) ? value : 0;

    /// <summary>Reads the gauges now.</summary>
    public void RecordObservableInstruments() => _listener.RecordObservableInstruments();

    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (Mine(tags, out var reason))
        {
            _values.AddOrUpdate(reason is null ? instrument.Name : $"{instrument.Name}:{reason}", value, (_, sum) => sum + value);
        }
    }

    private bool Mine(ReadOnlySpan<KeyValuePair<string, object?>> tags, out string? reason)
    {
        var mine = false;
        reason = null;
        foreach (var tag in tags)
        {
            mine |= tag.Key == ActorQueueTelemetry.LimiterNameTag && Equals(tag.Value, _limiterName);
            reason = tag.Key == ActorQueueTelemetry.RejectionReasonTag ? (string?)tag.Value : reason;
        }

        return mine;
    }
}
