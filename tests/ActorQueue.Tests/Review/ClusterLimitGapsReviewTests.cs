using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Gaps the cluster limiters' review left open: what the model-API adapters' statistics count (tokens, as the local
/// model-API adapter's), how a node agent's block fetch shows on the meter, and a fresh node's first attempt.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLimitGapsReviewTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private static readonly ModelApiLimiterOptions Rates = new(maxConcurrent: 4, requestsPerPeriod: 10, tokensPerPeriod: 1000, Hour);

    private static Task<T> Within<T>(Task<T> task) => task.WaitAsync(ClusterNodes.StepTimeout);

    private static Task<T> Within<T>(ValueTask<T> task) => task.AsTask().WaitAsync(ClusterNodes.StepTimeout);

    /// <summary>
    /// The local model-API adapter's available permits are the tokens <c>AttemptAcquire</c> could take now; so are the
    /// cluster ones': an attempt of that many must be granted (a cluster model-API attempt never is, so they are 0).
    /// Failed before: both reported the free slots (4 of 4), in which an attempt of 4 tokens was refused.
    /// </summary>
    [Fact]
    public async Task A_model_api_adapters_available_permits_are_tokens_an_attempt_takes()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.ModelApiLimiter("gaps-available", Rates);
        var adapter = limiter.AsRateLimiter();
        var partitioned = node.PartitionedModelApiLimiter<string>("gaps-available-keys", Rates, Hour);
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);
        using (var call = await Within(adapter.AcquireAsync(10)))
        using (var keyCall = await Within(keyed.AcquireAsync("a", 10)))
        {
            Assert.True(call.IsAcquired && keyCall.IsAcquired); // the counts are as of a reply from the gatekeeper
        }

        await Poll.UntilAsync(() => limiter.LocalRunningCount == 0, ClusterNodes.StepTimeout, "the call's slot went back");

        var available = adapter.GetStatistics()!.CurrentAvailablePermits;
        var keyAvailable = keyed.GetStatistics("a")!.CurrentAvailablePermits;

        using var attempt = adapter.AttemptAcquire((int)Math.Max(1, available));
        Assert.Equal(available > 0, attempt.IsAcquired); // reported available: an attempt of that many tokens takes them
        using var keyAttempt = keyed.AttemptAcquire("a", (int)Math.Max(1, keyAvailable));
        Assert.Equal(keyAvailable > 0, keyAttempt.IsAcquired);
        Assert.Equal((0L, 0L), (available, keyAvailable)); // an attempt never grants on a node: the rates are in the singleton
    }

    /// <summary>
    /// The local model-API adapter's queued count is the tokens the waiting calls asked for (one call waiting for 300
    /// tokens is 300); the cluster ones' counts the same for the calls waiting on this node (the singleton alone knows
    /// the other nodes' estimates), every caller's, not only the adapter's. Failed before: they counted the waiting calls
    /// cluster-wide (2 where 500 tokens waited).
    /// </summary>
    [Fact]
    public async Task A_model_api_adapters_queued_count_is_the_tokens_the_waiting_calls_asked_for()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var oneSlot = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 10, tokensPerPeriod: 1000, Hour);
        var limiter = node.ModelApiLimiter("gaps-queued", oneSlot);
        var adapter = limiter.AsRateLimiter();
        var partitioned = node.PartitionedModelApiLimiter<string>("gaps-queued-keys", oneSlot, Hour);
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);

        var held = await Within(limiter.AcquireAsync(1));
        var keyHeld = await Within(partitioned.AcquireAsync("a", 1));
        var waiting = adapter.AcquireAsync(300).AsTask();
        var other = limiter.AcquireAsync(200, source: "facade").AsTask();
        var keyWaiting = keyed.AcquireAsync("a", 300).AsTask();
        await Poll.UntilAsync(() => limiter.LocalWaitingCount == 2, ClusterNodes.StepTimeout, "two calls wait on this node");
        await Poll.ValueAsync(() => partitioned.GetStatisticsAsync(), s => s["a"].LocalWaiting == 1, ClusterNodes.StepTimeout);
        await limiter.GetStatusAsync(); // through the agents: each published what it had taken before it answers
        await partitioned.GetStatusAsync("a");

        Assert.Equal((0L, 500L), Counts(adapter.GetStatistics()!));
        Assert.Equal((0L, 300L), Counts(keyed.GetStatistics("a")!));

        held.Dispose();
        using (var first = await Within(waiting))
        {
            Assert.True(first.IsAcquired);
            await Poll.UntilAsync(() => adapter.GetStatistics()!.CurrentQueuedCount == 200, ClusterNodes.StepTimeout,
                () => $"the call of 200 tokens waits alone (queued {adapter.GetStatistics()!.CurrentQueuedCount})");
        }

        (await Within(other)).Dispose();
        keyHeld.Dispose();
        (await Within(keyWaiting)).Dispose();
        await Poll.UntilAsync(() => adapter.GetStatistics()!.CurrentQueuedCount == 0 && keyed.GetStatistics("a")!.CurrentQueuedCount == 0,
            ClusterNodes.StepTimeout, "nothing waits");

        static (long Available, long Queued) Counts(RateLimiterStatistics statistics) => (statistics.CurrentAvailablePermits, statistics.CurrentQueuedCount);
    }
}
