using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// A queue made without a name tagged its instruments with its generated name (queue-1, queue-2, …, one per queue ever
/// made) and named its spans "process queue-N": an application making short-lived unnamed queues grew a time series per
/// queue, kept for ever by an exporter (failed before with the three generated names; reported by helper 102). Unnamed
/// queues now share one name on metrics and spans, as unnamed limiters do; logs keep the generated name.
/// </summary>
public sealed class UnnamedQueueMetricTests : ActorQueueTestKit
{
    [Fact]
    public async Task Unnamed_queues_do_not_each_make_a_time_series_of_their_own()
    {
        var tagged = new ConcurrentDictionary<string, byte>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name && instrument.Name == ActorQueueTelemetry.QueueEnqueued)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == ActorQueueTelemetry.QueueNameTag)
                {
                    tagged[(string)tag.Value!] = 0;
                }
            }
        });
        listener.Start();

        var names = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            await using var queue = new BoundedQueue<int>(maxSize: 5, timeout: TimeSpan.Zero, system: Sys);
            await queue.StartAsync();
            Assert.True(await queue.PutAsync(1));
            names.Add(queue.Name);
        }

        Assert.Empty(names.Intersect(tagged.Keys));
        Assert.Contains(QueueTelemetry.Unnamed, tagged.Keys);
    }
}
