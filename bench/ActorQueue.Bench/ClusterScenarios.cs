using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Configuration;
using AqLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Bench;

/// <summary>
/// <c>--cluster</c>: three cluster nodes in this process on loopback (real remoting between them), measured against
/// one node doing the same work locally. Node 0 is the oldest and hosts the singleton; callers sit on node 1, so every
/// request crosses the network to the singleton and back.
/// </summary>
internal sealed class ClusterScenarios : IAsyncDisposable
{
    public const string SingleNode = "single-node";

    private const int WorkersPerNode = 4;
    private const int IoWorkersPerNode = 16;

    private readonly List<ActorSystem> _nodes;
    private int _run;

    private ClusterScenarios(List<ActorSystem> nodes) => _nodes = nodes;

    public static async Task<ClusterScenarios> StartAsync(string overrides)
    {
        var config = ConfigurationFactory.ParseString(overrides + "\nakka.loglevel = WARNING\nakka.stdout-loglevel = OFF\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off");
        var nodes = new List<ActorSystem>();
        for (var i = 0; i < 3; i++)
        {
            var node = ActorQueueClusterRuntime.Create(new ClusterNodeOptions { InsecureLoopback = true }, config); // throughput, not TLS, is measured here
            nodes.Add(node);
            await ActorQueueCluster.Get(node).JoinAsync(Akka.Cluster.Cluster.Get(nodes[0]).SelfAddress);
        }

        return new ClusterScenarios(nodes);
    }

    public IEnumerable<Scenario> All(ActorSystem local, Sizes sizes)
    {
        var items = sizes.BatchItems / 10;
        yield return new Scenario("cluster-queue-trivial", "ops/s",
        [
            new(Runner.Ours, () => DistributedBatch(items, WorkersPerNode, _ => Task.CompletedTask)),
            new(SingleNode, () => LocalBatch(local, items, 3 * WorkersPerNode, _ => Task.CompletedTask)),
        ]);
        yield return new Scenario("cluster-queue-io", "ops/s",
        [
            new(Runner.Ours, () => DistributedBatch(sizes.IoItems, IoWorkersPerNode, _ => Task.Delay(1))),
            new(SingleNode, () => LocalBatch(local, sizes.IoItems, 3 * IoWorkersPerNode, _ => Task.Delay(1))),
        ]);
        yield return new Scenario("cluster-limiter-uncontended", "ops/s",
        [
            new(Runner.Ours, () => ClusterLimiterLoop(sizes.LimiterOps / 10)),
            new(SingleNode, () => LocalLimiterLoop(local, sizes.LimiterOps / 10)),
        ]);
        yield return new Scenario("cluster-limiter-contended", "ops/s",
        [
            new(Runner.Ours, () => ClusterLimiterContended(16, sizes.ContendedPerTask / 4)),
            new(SingleNode, () => LocalLimiterContended(local, 48, sizes.ContendedPerTask / 4)),
            new(Floors.Bare, () => Floors.ClusterCallers(_nodes, 16, sizes.ContendedPerTask / 4, 4, NextName("bench-floor"))),
            new(Floors.BareQueued, () => Floors.ClusterCallers(_nodes, 16, sizes.ContendedPerTask / 4, 4, NextName("bench-floor"), replyQueued: true)),
        ]);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Enumerable.Reverse(_nodes))
        {
            await node.Terminate();
        }
    }

    private string NextName(string kind) => $"{kind}-{Interlocked.Increment(ref _run)}";

    /// <summary>A batch put on node 1, processed by workers on all three nodes.</summary>
    private async Task<double> DistributedBatch(int items, int workersPerNode, Func<int, Task> work)
    {
        var name = NextName("bench-queue");
        var registrations = _nodes.Select(node => ActorQueueCluster.Get(node).RegisterWorkers<int, int>(name, async (item, _) =>
        {
            await work(item);
            return item;
        }, workersPerNode)).ToList();
        await using var queue = ActorQueueCluster.Get(_nodes[1]).WorkQueue<int, int>(name, maxSize: 100);
        try
        {
            return await Runner.OpsPerSecond(items, () => queue.BatchProcessAsync(Enumerable.Range(0, items)));
        }
        finally
        {
            foreach (var registration in registrations)
            {
                await registration.DisposeAsync();
            }
        }
    }

    private static async Task<double> LocalBatch(ActorSystem system, int items, int workers, Func<int, Task> work)
    {
        await using var queue = new WorkQueue<int>(100, Timeout.InfiniteTimeSpan, system: system);
        return await Runner.OpsPerSecond(items, () => queue.BatchProcessAsync(Enumerable.Range(0, items), work, workers));
    }

    private async Task<double> ClusterLimiterLoop(int operations)
    {
        await using var limiter = ActorQueueCluster.Get(_nodes[1]).Limiter(NextName("bench-limiter"), 1);
        return await Runner.OpsPerSecond(operations, async () =>
        {
            for (var i = 0; i < operations; i++)
            {
                using var lease = await limiter.AcquireAsync("bench");
            }
        });
    }

    private static async Task<double> LocalLimiterLoop(ActorSystem system, int operations)
    {
        await using var limiter = new AqLimiter(1, system: system);
        return await Runner.OpsPerSecond(operations, async () =>
        {
            for (var i = 0; i < operations; i++)
            {
                using var lease = await limiter.AcquireAsync("bench");
            }
        });
    }

    /// <summary>16 tasks on each of the three nodes share 4 cluster-wide slots.</summary>
    private async Task<double> ClusterLimiterContended(int tasksPerNode, int perTask)
    {
        var name = NextName("bench-limiter");
        var limiters = _nodes.Select(node => ActorQueueCluster.Get(node).Limiter(name, 4)).ToList();
        try
        {
            return await Runner.OpsPerSecond(3L * tasksPerNode * perTask, () => Task.WhenAll(
                limiters.SelectMany(limiter => Enumerable.Range(0, tasksPerNode).Select(_ => HoldTurns(limiter, perTask)))));
        }
        finally
        {
            foreach (var limiter in limiters)
            {
                await limiter.DisposeAsync();
            }
        }
    }

    private static async Task<double> LocalLimiterContended(ActorSystem system, int tasks, int perTask)
    {
        await using var limiter = new AqLimiter(4, system: system);
        return await Runner.OpsPerSecond((long)tasks * perTask, () => Task.WhenAll(Enumerable.Range(0, tasks).Select(_ => HoldTurns(limiter, perTask))));
    }

    private static Task HoldTurns(IConcurrencyLimiter limiter, int turns) => Task.Run(async () =>
    {
        for (var i = 0; i < turns; i++)
        {
            using var lease = await limiter.AcquireAsync("bench");
            await Task.Yield();
        }
    });
}
