using ActorQueue.Actors;

namespace ActorQueue.Cluster;

/// <summary>
/// How many partitions live on a node, and the counts each live one's agent publishes, written by its
/// <see cref="PartitionAgentsActor"/> only and read by the facade and its <c>PartitionedRateLimiter</c> adapter on any
/// thread (an entry is added before the partition's first request is routed and removed as its agent stops).
/// </summary>
internal sealed class PartitionCount
{
    private volatile int _value;

    /// <summary>The count now.</summary>
    public int Value => _value;

    /// <summary>The live partitions by key (as many as <see cref="Value"/>, so bounded as the agents are).</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, LivePartition> Live { get; } = new(StringComparer.Ordinal);

    /// <summary>Called by the parent only.</summary>
    public void Publish(int value) => _value = value;

    /// <summary>How many stripes the keys' requests on their way to the parent are counted in (a power of two).</summary>
    private const int Stripes = 64;

    /// <summary>The concurrency facade's requests on their way to the parent for keys without a live partition, by their key's stripe (<see cref="Routing"/>).</summary>
    private readonly RoutingCount[] _routing = Enumerable.Range(0, Stripes).Select(_ => new RoutingCount()).ToArray();

    /// <summary>1 while a refused attempt's wish for a key with no live partition is on its way to the parent, by the key's stripe.</summary>
    private readonly int[] _freshWishes = new int[Stripes];

    /// <summary>
    /// The requests on their way to the parent for the keys of <paramref name="key"/>'s stripe that had no live partition
    /// when they were sent: a concurrency facade counts one here (<see cref="RoutingCount.Sending"/>) before it looks the
    /// key's partition up; if it finds one, it counts the request in that partition (<see cref="LivePartition.OnTheWay"/>),
    /// suspends its loan and, the partition still live, takes it off the stripe again. The parent counts a request off
    /// where it was counted once it announced it in the loan of the agent it routes it to, and a key's agent lends
    /// nothing while its own count or its stripe has one on its way. So an attempt made after the request's call returned
    /// passes it neither on its way to the parent (the live agent's loan is suspended and its count holds it; an agent
    /// made later sees the stripe, or the count carried from a removed one) nor to the agent (the announce). Striped
    /// rather than per key for keys without a partition, so that nothing per key outlives its agent; the price: a key's
    /// agent lends nothing while the first request of another key of its stripe, with no partition here, is on its way.
    /// </summary>
    public RoutingCount Routing(string key) => _routing[StripeOf(key)];

    /// <summary>Facade, after a refused attempt on a key with no live partition: whether it should send the parent a wish now (one per stripe on its way).</summary>
    public bool TryOpenFreshWish(string key) =>
        StripeOf(key) is var stripe && Volatile.Read(ref _freshWishes[stripe]) == 0 && Interlocked.Exchange(ref _freshWishes[stripe], 1) == 0;

    /// <summary>The parent: a fresh key's wish arrived.</summary>
    public void FreshWishHandled(string key) => Volatile.Write(ref _freshWishes[StripeOf(key)], 0);

    private static int StripeOf(string key) => StringComparer.Ordinal.GetHashCode(key) & (Stripes - 1);
}

/// <summary>What a live partition's agent publishes for synchronous reads: the cluster-wide counts as last heard, this node's exact ones, the limit as last heard.</summary>
/// <param name="Cluster">Held and waiting cluster-wide, as of the agent's last reply from the partition's gatekeeper.</param>
/// <param name="Local">Held and waiting on this node, exactly.</param>
/// <param name="Limits">The partition's limit (resized or not), as the agent last heard it.</param>
internal sealed record LivePartition(LimiterCounts Cluster, LimiterCounts Local, LimitMirror Limits)
{
    /// <summary>A concurrency partition's: claims leases from the block its agent lends through <see cref="Local"/>'s loan and gives them back; <c>null</c> with rates.</summary>
    public ClaimedLeaseReleaser? Claims { get; init; }

    /// <summary>Whether a refused attempt's wish for a block is on its way to this partition's agent (shared with it).</summary>
    public BlockWish Wish { get; init; } = new();

    /// <summary>
    /// The facade's requests for this key on their way to the parent that found this partition live (see
    /// <see cref="PartitionCount.Routing"/>); its agent lends nothing while any is. Shared with the key's next agent if
    /// the partition is removed with one on its way.
    /// </summary>
    public RoutingCount OnTheWay { get; init; } = new();

    /// <summary>The counts now.</summary>
    public ClusterPartitionStatistics Statistics => new(Cluster.Running, Cluster.Waiting, Local.Running, Local.Waiting);

    /// <summary>Leases the limiter's RateLimiting views on this node gave for this key since the partition went live here.</summary>
    private LeaseTotals _leases;

    /// <summary>Free permits cluster-wide, as last heard.</summary>
    public int Available => Math.Max(0, Limits.Current.MaxRunning - Cluster.Running);

    /// <summary>
    /// This key's lease totals on this node, as a <see cref="System.Threading.RateLimiting.RateLimiterStatistics"/> reports
    /// them with <paramref name="available"/> and <paramref name="queued"/>: since the partition went live here (a key
    /// whose agent stopped for idleness starts again at 0, as a partition of RateLimiting's own limiter does).
    /// </summary>
    public System.Threading.RateLimiting.RateLimiterStatistics RateStatistics(long available, long queued) => new()
    {
        CurrentAvailablePermits = available,
        CurrentQueuedCount = queued,
        TotalSuccessfulLeases = _leases.Successful,
        TotalFailedLeases = _leases.Failed,
    };

    /// <summary>Counts a lease a RateLimiting view hands out for this key, on any thread, without a lock or a message.</summary>
    /// <returns><paramref name="lease"/>.</returns>
    public System.Threading.RateLimiting.RateLimitLease CountLease(System.Threading.RateLimiting.RateLimitLease lease)
    {
        _leases.Count(lease.IsAcquired);
        return lease;
    }
}

/// <summary>
/// Requests counted on their way to the partitions' parent (<see cref="PartitionCount.Routing"/>,
/// <see cref="LivePartition.OnTheWay"/>): any thread counts one before it sends it; the facade that moves its count
/// elsewhere, and the parent as it routes it, count it off.
/// </summary>
internal sealed class RoutingCount
{
    private int _onTheWay;

    /// <summary>Whether any request is on its way.</summary>
    public bool Any => Volatile.Read(ref _onTheWay) != 0;

    /// <summary>Counts one on its way (a full fence).</summary>
    public void Sending() => Interlocked.Increment(ref _onTheWay);

    /// <summary>Counts one off (a full fence).</summary>
    public void Handled() => Interlocked.Decrement(ref _onTheWay);
}
