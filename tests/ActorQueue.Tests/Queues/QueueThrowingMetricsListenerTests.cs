using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// A metrics listener is the application's code, run by whoever records — for a queue, inside its router actor, as it
/// takes an item in, hands it out or counts it done. A listener that throws there must cost a measurement, never an item.
/// </summary>
public sealed class QueueThrowingMetricsListenerTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_listener_that_throws_on_every_queue_measurement_loses_no_item()
    {
        var name = $"throwing-queue-{Guid.NewGuid():N}";
        await using var queue = new BoundedQueue<int>(5, Timeout.InfiniteTimeSpan, system: Sys, name: name);
        await queue.StartAsync();
        var seen = new ConcurrentBag<int>();
        using var listener = ThrowingForQueue(name);
        await queue.StartWorkersAsync(async item =>
        {
            await Task.Yield();
            seen.Add(item);
        }, numWorkers: 2);

        for (var i = 0; i < 40; i++)
        {
            Assert.True(await Within(queue.PutAsync(i, Timeout.InfiniteTimeSpan)));
        }

        await Within(queue.JoinAsync());
        Assert.Equal(Enumerable.Range(0, 40), seen.Order());
        Assert.Equal(40, queue.Metrics.Processed);
    }

    /// <summary>A listener whose callback throws for every measurement tagged with the queue named <paramref name="queueName"/>.</summary>
    private static MeterListener ThrowingForQueue(string queueName) =>
        ThrowingMeterListener.Start(instrumentName: null, ActorQueueTelemetry.QueueNameTag, name => Equals(name, queueName));
}
