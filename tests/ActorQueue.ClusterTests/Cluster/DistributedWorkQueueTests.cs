using System.Collections.Concurrent;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

[Collection(ClusterCollection.Name)]
public sealed class DistributedWorkQueueTests
{
    private static string AddressOf(ActorSystem node) => Akka.Cluster.Cluster.Get(node).SelfAddress.ToString();

    [Fact]
    public async Task Workers_on_every_node_pull_items_and_results_come_back_to_the_producer()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        const int workersPerNode = 2;
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = 0;
        var registrations = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).RegisterWorkers<int, string>("squares", async (item, token) =>
        {
            // The first item of each worker waits until all six workers have one: every node must be pulling.
            if (Interlocked.Increment(ref started) == 3 * workersPerNode)
            {
                allStarted.TrySetResult();
            }

            await allStarted.Task.WaitAsync(token);
            return $"{item * item}";
        }, numWorkers: workersPerNode)).ToList();

        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<int, string>("squares", maxSize: 10);
        var results = await queue.BatchProcessAsync(Enumerable.Range(1, 200)).WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(Enumerable.Range(1, 200).Select(i => $"{i * i}"), results.Select(result => result.Result));
        Assert.All(results, result => Assert.True(result.Succeeded));
        Assert.Equal(cluster.Nodes.Select(AddressOf).Order(), results.Select(result => result.Node).Distinct().Order());
        Assert.Equal(new DistributedQueueMetrics(200, 0, 200, 0, 0, 0, 0), queue.Metrics);
        foreach (var registration in registrations)
        {
            await registration.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_failing_handler_is_reported_failed_and_a_full_queue_pushes_back()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var producer = ActorQueueCluster.Get(cluster.Nodes[0]);
        await using var queue = producer.WorkQueue<string, int>("strict", maxSize: 1);

        // No workers yet: the first item fills the queue, the second is turned away at once.
        var first = await queue.SubmitAsync("ok", TimeSpan.Zero);
        Assert.NotNull(first);
        Assert.Null(await queue.SubmitAsync("turned away", TimeSpan.Zero));

        var third = queue.SubmitAsync("boom", Timeout.InfiniteTimeSpan); // waits for space
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<string, int>("strict",
            (item, _) => item == "boom" ? throw new InvalidOperationException("bad item") : Task.FromResult(item.Length));

        var ok = await first.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, 2), (ok.Succeeded, ok.Result));
        var boom = await (await third.WaitAsync(ClusterNodes.StepTimeout))!.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.False(boom.Succeeded);
        Assert.Equal("InvalidOperationException: bad item", boom.Error);
        Assert.Equal(new DistributedQueueMetrics(2, 1, 1, 1, 0, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task Items_in_flight_on_a_crashed_worker_node_are_run_again_elsewhere_and_none_is_lost()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var survivor = cluster.Nodes[1];
        var victim = cluster.Nodes[2];
        var victimHolds = 0;
        var victimHoldsTwo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var processedBySurvivor = new ConcurrentBag<int>();

        // The victim takes two items and never finishes them; the survivor does the rest.
        await using var victimWorkers = ActorQueueCluster.Get(victim).RegisterWorkers<int, int>("batch", async (item, token) =>
        {
            if (Interlocked.Increment(ref victimHolds) == 2)
            {
                victimHoldsTwo.TrySetResult();
            }

            await Task.Delay(Timeout.Infinite, token);
            return item;
        }, numWorkers: 2);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var survivorWorkers = ActorQueueCluster.Get(survivor).RegisterWorkers<int, int>("batch", async (item, token) =>
        {
            await gate.Task.WaitAsync(token);
            processedBySurvivor.Add(item);
            return item;
        }, numWorkers: 2);

        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<int, int>("batch", maxSize: 20);
        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 60));
        await victimHoldsTwo.Task.WaitAsync(ClusterNodes.StepTimeout);
        await cluster.CrashAsync(victim);
        gate.SetResult();

        var results = await batch.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(Enumerable.Range(0, 60), results.Select(result => result.Result));
        Assert.All(results, result => Assert.Equal(AddressOf(survivor), result.Node));
        var rerun = results.Where(result => result.Deliveries == 2).ToList();
        Assert.Equal(2, rerun.Count); // exactly the two items the victim held
        Assert.Equal(new DistributedQueueMetrics(60, 0, 60, 0, 2, 0, 0), queue.Metrics);
        Assert.Equal(60, processedBySurvivor.Count);
    }

    [Fact]
    public async Task When_the_routers_node_crashes_the_producer_re_announces_its_items_to_the_new_router()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var routerNode = cluster.Nodes[0]; // oldest: hosts the singleton
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new ConcurrentDictionary<int, int>();
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[2]).RegisterWorkers<int, int>("moving", async (item, token) =>
        {
            seen.AddOrUpdate(item, 1, (_, count) => count + 1);
            await gate.Task.WaitAsync(token);
            return -item;
        }, numWorkers: 3);

        await using var queue = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<int, int>("moving", maxSize: 50);
        var submitted = new List<DistributedItem<int>>();
        for (var i = 0; i < 40; i++)
        {
            submitted.Add((await queue.SubmitAsync(i, Timeout.InfiniteTimeSpan))!);
        }

        await Poll.UntilAsync(() => seen.Count == 3, ClusterNodes.StepTimeout, "three items are in flight");
        await cluster.CrashAsync(routerNode); // 37 queued items and the router die with the node
        gate.SetResult();

        var results = await Task.WhenAll(submitted.Select(item => item.Completion)).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => -i), results.Select(result => result.Result));
        Assert.All(results, result => Assert.True(result.Succeeded));
        await queue.JoinAsync().WaitAsync(ClusterNodes.StepTimeout);
        var metrics = queue.Metrics;
        Assert.Equal((40L, 0L, 0), (metrics.Succeeded, metrics.Failed, metrics.Outstanding));
        // Items still in flight when the producer re-announced ran again: each extra run's result is a duplicate
        // (whether any did depends on timing; the last may arrive just after the batch completed).
        await Poll.UntilAsync(() => queue.Metrics.Duplicates == seen.Values.Sum() - 40, ClusterNodes.StepTimeout,
            () => $"{queue.Metrics.Duplicates} duplicates are counted for {seen.Values.Sum() - 40} extra runs");
    }
}
