using System.Diagnostics.Metrics;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests;

/// <summary>
/// A metrics listener that throws, as an application's might: for the measurements of one of ActorQueue's instruments
/// (or of all of them) whose tag <c>tagKey</c> has a value <c>mine</c> accepts, so that tests running beside it are
/// not disturbed.
/// </summary>
internal static class ThrowingMeterListener
{
    /// <summary>Starts the listener; dispose it to stop.</summary>
    /// <param name="instrumentName">The instrument whose measurements throw; <c>null</c> for every one of ActorQueue's.</param>
    /// <param name="tagKey">The tag that names the limiter or queue.</param>
    /// <param name="mine">Whether the tag's value is the one under test.</param>
    /// <returns>The started listener.</returns>
    public static MeterListener Start(string? instrumentName, string tagKey, Func<object?, bool> mine)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (published, self) =>
            {
                if (published.Meter.Name == ActorQueueTelemetry.Name && (instrumentName is null || published.Name == instrumentName))
                {
                    self.EnableMeasurementEvents(published);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((_, _, tags, _) => ThrowIfMine(tags, tagKey, mine));
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) => ThrowIfMine(tags, tagKey, mine));
        listener.SetMeasurementEventCallback<double>((_, _, tags, _) => ThrowIfMine(tags, tagKey, mine));
        listener.Start();
        return listener;
    }

    private static void ThrowIfMine(ReadOnlySpan<KeyValuePair<string, object?>> tags, string tagKey, Func<object?, bool> mine)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == tagKey && mine(tag.Value))
            {
                throw new InvalidOperationException("the application's metrics listener failed");
            }
        }
    }
}
