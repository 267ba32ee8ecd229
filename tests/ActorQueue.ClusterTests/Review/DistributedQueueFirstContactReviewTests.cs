using System.Collections.Concurrent;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of bdbf719 (a producer's first contact with a router incarnation re-sends its puts as ordinary puts, so they
/// meet <c>maxSize</c>), on whole clusters: what the change promises for a fresh handle with many puts in flight.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedQueueFirstContactReviewTests
{
    /// <summary>
    /// A fresh handle on another node puts, in one go, into a queue with room for one: a zero-timeout put, an infinite
    /// one, another zero-timeout put, an infinite one and a batch of two. As ordinary puts: the first takes the room,
    /// the second zero-timeout put is refused (a put waits before it), every other waits and runs in put order; each
    /// put is counted once.
    /// </summary>
    [Fact]
    public Task A_fresh_handles_mixed_puts_on_a_nearly_full_queue_meet_the_bound_in_put_order() => MixedPutsAsync(durability: null);

    /// <summary>The same on a durable router (its puts are acknowledged once written).</summary>
    [Fact]
    public async Task A_fresh_handles_mixed_puts_on_a_nearly_full_durable_queue_meet_the_bound_in_put_order()
    {
        var folder = Directory.CreateTempSubdirectory("actorqueue-review-first-contact-").FullName;
        try
        {
            await MixedPutsAsync(new ActorQueue.Actors.QueueDurability { StoragePath = Path.Combine(folder, "queues.db") });
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // SQLite's pool may still hold the file for an instant.
            }
        }
    }

    private static async Task MixedPutsAsync(ActorQueue.Actors.QueueDurability? durability)
    {
        await using var cluster = await ClusterNodes.StartAsync(2, durability: durability);
        const string name = "first-contact-mixed";
        await using var first = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, string>(name, maxSize: 3);
        Assert.NotNull(await first.SubmitAsync("fill-1", TimeSpan.Zero).WaitAsync(ClusterNodes.StepTimeout));
        Assert.NotNull(await first.SubmitAsync("fill-2", TimeSpan.Zero).WaitAsync(ClusterNodes.StepTimeout));
        await using var late = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<string, string>(name, maxSize: 3);

        var a = late.SubmitAsync("a", TimeSpan.Zero);
        var b = late.SubmitAsync("b", Timeout.InfiniteTimeSpan);
        var c = late.SubmitAsync("c", TimeSpan.Zero);
        var d = late.SubmitAsync("d", Timeout.InfiniteTimeSpan);
        var batch = late.BatchProcessAsync(["e", "f"]);

        Assert.NotNull(await a.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Null(await c.WaitAsync(ClusterNodes.StepTimeout));
        Assert.False(b.IsCompleted);
        var ran = new ConcurrentQueue<string>();
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[0]).RegisterWorkers<string, string>(name, (item, _) =>
        {
            ran.Enqueue(item);
            return Task.FromResult(item);
        });
        Assert.NotNull(await b.WaitAsync(ClusterNodes.StepTimeout));
        Assert.NotNull(await d.WaitAsync(ClusterNodes.StepTimeout));
        await batch.WaitAsync(ClusterNodes.StepTimeout);
        await late.JoinAsync().WaitAsync(ClusterNodes.StepTimeout);
        await first.JoinAsync().WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(["fill-1", "fill-2", "a", "b", "d", "e", "f"], ran.ToArray());
        var metrics = late.Metrics;
        Assert.Equal((5L, 1L, 5L, 0L, 0), (metrics.Accepted, metrics.Rejected, metrics.Succeeded, metrics.Duplicates, metrics.Outstanding));
    }

    /// <summary>
    /// The router's node leaves while a fresh handle's puts (zero, finite and infinite timeouts) are in flight: every put
    /// is answered, every accepted one gets a result, and each is counted once.
    /// </summary>
    [Fact]
    public Task A_fresh_handles_puts_racing_a_hand_over_are_each_answered_and_accepted_ones_run() => RaceHandOverAsync(crash: false);

    /// <summary>The same when the router's node crashes.</summary>
    [Fact]
    public Task A_fresh_handles_puts_racing_a_router_crash_are_each_answered_and_accepted_ones_run() => RaceHandOverAsync(crash: true);

    private static async Task RaceHandOverAsync(bool crash)
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        const string name = "first-contact-hand-over";
        await using var filler = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<int, int>(name, maxSize: 4);
        Assert.NotNull(await filler.SubmitAsync(-1, TimeSpan.Zero).WaitAsync(ClusterNodes.StepTimeout));
        await using var late = ActorQueueCluster.Get(cluster.Nodes[2]).WorkQueue<int, int>(name, maxSize: 4);

        var puts = new List<Task<DistributedItem<int>?>>();
        for (var i = 0; i < 30; i++)
        {
            puts.Add(late.SubmitAsync(i, (i % 3) switch { 0 => TimeSpan.Zero, 1 => TimeSpan.FromMilliseconds(50), _ => Timeout.InfiniteTimeSpan }));
        }

        var leaving = crash ? cluster.CrashAsync(cluster.Nodes[0]) : cluster.LeaveAsync(cluster.Nodes[0]);
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<int, int>(name, (item, _) => Task.FromResult(item));
        await leaving;
        var answered = await Task.WhenAll(puts).WaitAsync(ClusterNodes.StepTimeout);
        var accepted = answered.OfType<DistributedItem<int>>().ToArray();
        await Task.WhenAll(accepted.Select(item => item.Completion)).WaitAsync(ClusterNodes.StepTimeout);
        await late.JoinAsync().WaitAsync(ClusterNodes.StepTimeout);

        var metrics = late.Metrics;
        Assert.Equal(accepted.Length, metrics.Accepted);
        Assert.Equal(30 - accepted.Length, metrics.Rejected);
        Assert.Equal(0, metrics.Outstanding);
    }
}
