using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Several cluster nodes in this test process, on 127.0.0.1 with free ports, authenticated with certificates of the
/// test CA, joined programmatically, with failure detection and the split-brain resolver tuned so that a killed node
/// is downed within seconds.
/// </summary>
internal sealed class ClusterNodes : IAsyncDisposable
{
    /// <summary>How long any cluster step (forming, downing, hand-over) may take before a test fails.</summary>
    public static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Fast gossip, hand-over and downing, but failure detection that tolerates the pauses of a loaded test process.
    /// </summary>
    /// <remarks>
    /// The nodes' heartbeat senders are actors on the process's thread pool, shared with every test collection running
    /// beside the cluster tests. Starved, a sender falls a second or more behind its 200 ms interval (Akka logs "Scheduled
    /// sending of heartbeat was delayed"); with a 1 s acceptable pause its peers took a live node for lost and the
    /// split-brain resolver downed it (of two members after a leave, keep-majority keeps the lower address), so its asks
    /// went unanswered, or a joining node never became Up. A crashed node is still downed within seconds: the pause,
    /// <c>stable-after</c>, and a gossip round.
    /// </remarks>
    public static readonly Config FastCluster = ConfigurationFactory.ParseString(ClusterLogFile.Config).WithFallback(ConfigurationFactory.ParseString("""
        akka.loglevel = WARNING
        akka.stdout-loglevel = OFF
        akka.coordinated-shutdown.run-by-actor-system-terminate = off
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        akka.cluster.gossip-interval = 200ms
        akka.cluster.leader-actions-interval = 200ms
        akka.cluster.periodic-tasks-initial-delay = 100ms
        akka.cluster.failure-detector.heartbeat-interval = 200ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 5s
        akka.cluster.failure-detector.expected-response-after = 500ms
        akka.cluster.split-brain-resolver.stable-after = 1s
        akka.cluster.singleton.hand-over-retry-interval = 200ms
        akka.cluster.singleton-proxy.singleton-identification-interval = 200ms
        actorqueue.cluster.recover-interval = 300ms
        """));

    private readonly List<ActorSystem> _all = [];

    private ClusterNodes()
    {
    }

    /// <summary>The nodes, oldest (the singleton's host) first; a killed node stays in the list.</summary>
    public IReadOnlyList<ActorSystem> Nodes => _all;

    /// <summary>Starts <paramref name="count"/> nodes and joins them into one cluster, all Up; with <paramref name="durability"/>, their queue routers journal there.</summary>
    public static async Task<ClusterNodes> StartAsync(int count, string? extraConfig = null, ActorQueue.Actors.QueueDurability? durability = null)
    {
        var nodes = new ClusterNodes();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var options = durability is null ? null : TestCertificates.MemberOptions($"node{i}") with { QueueDurability = durability };
                await nodes.AddNodeAsync(extraConfig, options);
            }

            await nodes.WaitForMembersUpAsync(count);
            return nodes;
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts one more node and joins it to the first node (or forms the cluster when it is the first); its
    /// certificate comes from the test CA unless <paramref name="options"/> say otherwise.
    /// </summary>
    public async Task<ActorSystem> AddNodeAsync(string? extraConfig = null, ClusterNodeOptions? options = null)
    {
        var config = extraConfig is null ? FastCluster : ConfigurationFactory.ParseString(extraConfig).WithFallback(FastCluster);
        var node = ActorQueueClusterRuntime.Create(options ?? TestCertificates.MemberOptions($"node{_all.Count}"), config);
        _all.Add(node);
        var seed = _all[0];
        await ActorQueueCluster.Get(node).JoinAsync(Akka.Cluster.Cluster.Get(seed).SelfAddress).WaitAsync(StepTimeout);
        return node;
    }

    /// <summary>Waits until every live node sees <paramref name="count"/> members Up.</summary>
    public Task WaitForMembersUpAsync(int count) =>
        Poll.UntilAsync(
            () => Live.All(node => Akka.Cluster.Cluster.Get(node).State.Members.Count(member => member.Status == MemberStatus.Up) == count),
            StepTimeout, $"every node sees {count} members Up", TimeSpan.FromMilliseconds(20));

    /// <summary>
    /// Kills a node the way a crash would: its actor system stops without leaving the cluster, so the others only
    /// notice through failure detection, and the split-brain resolver downs it.
    /// </summary>
    public async Task CrashAsync(ActorSystem node)
    {
        var address = Akka.Cluster.Cluster.Get(node).SelfAddress;
        await node.Terminate().WaitAsync(StepTimeout);
        await Poll.UntilAsync(
            () => Live.All(other => Akka.Cluster.Cluster.Get(other).State.Members.All(member => member.Address != address)),
            StepTimeout, $"the survivors removed {address}", TimeSpan.FromMilliseconds(20));
    }

    /// <summary>Makes a node leave gracefully and waits until the others removed it.</summary>
    public async Task LeaveAsync(ActorSystem node)
    {
        var address = Akka.Cluster.Cluster.Get(node).SelfAddress;
        await ActorQueueCluster.Get(node).LeaveAsync().WaitAsync(StepTimeout);
        await Poll.UntilAsync(
            () => Live.All(other => Akka.Cluster.Cluster.Get(other).State.Members.All(member => member.Address != address)),
            StepTimeout, $"the others removed {address}", TimeSpan.FromMilliseconds(20));
    }

    /// <summary>A cluster limiter's exact counts, or null when the ask is lost (it went to a gatekeeper that is just stopping).</summary>
    public static Task<ClusterLimiterStatus?> StatusAsync(ClusterConcurrencyLimiter limiter) => StatusAsync(limiter.GetStatusAsync);

    /// <summary>A partition's exact counts, or null when the ask is lost.</summary>
    public static Task<ClusterLimiterStatus?> StatusAsync(ClusterPartitionedLimiter limiter, string key) =>
        StatusAsync((timeout, token) => limiter.GetStatusAsync(key, timeout, token));

    private static async Task<ClusterLimiterStatus?> StatusAsync(Func<TimeSpan?, CancellationToken, Task<ClusterLimiterStatus>> ask)
    {
        try
        {
            return await ask(TimeSpan.FromSeconds(1), CancellationToken.None);
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    private IEnumerable<ActorSystem> Live => _all.Where(node => !node.WhenTerminated.IsCompleted);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var node in _all.AsEnumerable().Reverse())
        {
            await node.Terminate().WaitAsync(StepTimeout);
        }
    }
}
