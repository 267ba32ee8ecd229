using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

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

    /// <summary>
    /// A refused attempt makes the node's agent fetch a block with a one-permit request that may not wait; refused at the
    /// gatekeeper (the limit is in use), that is the agent's own question, not a caller turned away: the rejections and
    /// wait timeouts stay at 0, while a caller's zero-timeout acquire refused just after still counts as <c>would_wait</c> —
    /// even one whose source is the name the agent's fetch once went by (<c>block-fetch</c>: the fetch was known by it).
    /// Failed before: the fetch counted one <c>would_wait</c> rejection and one wait timeout; then, with the fetch known by
    /// its source, the caller so named counted none.
    /// </summary>
    [Fact]
    public async Task A_refused_block_fetch_is_no_callers_rejection_on_the_meter()
    {
        var name = $"gaps-fetch-{Guid.NewGuid():N}";
        var measured = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, meter) =>
        {
            if (instrument.Meter.Name == ActorQueueTelemetry.Name)
            {
                meter.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? limiter = null, reason = null;
            foreach (var tag in tags)
            {
                limiter = tag.Key == ActorQueueTelemetry.LimiterNameTag ? tag.Value as string : limiter;
                reason = tag.Key == ActorQueueTelemetry.RejectionReasonTag ? tag.Value as string : reason;
            }

            if (limiter == name)
            {
                measured.AddOrUpdate(reason is null ? instrument.Name : $"{instrument.Name}/{reason}", value, (_, sum) => sum + value);
            }
        });
        listener.Start();

        await using var cluster = await ClusterNodes.StartAsync(1);
        var fetchRefused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).StartLimiter(name, new ClusterLimit(1, null, null, QueueFullMode.RejectNewcomer),
            setup => Props.Create(() => new WatchingAgent(setup, WatchingAgent.Rejected, fetchRefused)), _ => { }, register: true);
        await using var held = await Within(limiter.AcquireAsync("holder")); // the whole limit: the agent follows its gatekeeper now

        using (var attempt = limiter.AsRateLimiter().AttemptAcquire(1))
        {
            Assert.False(attempt.IsAcquired); // no block: the agent asks the gatekeeper for one, which has nothing free
        }

        await fetchRefused.Task.WaitAsync(ClusterNodes.StepTimeout); // the gatekeeper metered before it answered

        Assert.Equal(0, measured.GetValueOrDefault(ActorQueueTelemetry.LimiterRejections + "/would_wait"));
        Assert.Equal(0, measured.GetValueOrDefault(ActorQueueTelemetry.LimiterWaitTimeouts));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero, source: "block-fetch").AsTask()));
        Assert.Equal((1L, 1L), (measured.GetValueOrDefault(ActorQueueTelemetry.LimiterRejections + "/would_wait"), measured.GetValueOrDefault(ActorQueueTelemetry.LimiterWaitTimeouts)));
    }

    /// <summary>
    /// A fresh node's first attempt finds no block and its agent following no gatekeeper yet: the agent says hello, and
    /// once the gatekeeper's roll call makes it follow, fetches the block that attempt wished for — with no second
    /// attempt (which the facade would not send for a quiet while anyway). So a node whose callers only try is served
    /// from a round trip after its first try. Failed before: the wish ended with the hello, and no block came until a
    /// later attempt after the quiet while (the wait for the block timed out).
    /// </summary>
    [Fact]
    public async Task A_fresh_nodes_first_refused_attempt_brings_a_block_once_the_agent_follows()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var blockCame = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).StartLimiter($"gaps-first-{Guid.NewGuid():N}", new ClusterLimit(4, null, null, QueueFullMode.RejectNewcomer),
            setup => Props.Create(() => new WatchingAgent(setup, WatchingAgent.BlockGranted, blockCame)), _ => { }, register: true);
        var adapter = limiter.AsRateLimiter();

        using (var first = adapter.AttemptAcquire(1))
        {
            Assert.False(first.IsAcquired); // nothing lent yet: the agent follows no gatekeeper
        }

        await blockCame.Task.WaitAsync(ClusterNodes.StepTimeout);
        RateLimitLease? lease = null;
        await Poll.UntilAsync(() =>
        {
            lease = adapter.AttemptAcquire(1);
            if (lease.IsAcquired)
            {
                return true;
            }

            lease.Dispose(); // the block is lent once the agent ends the grant's message
            return false;
        }, ClusterNodes.StepTimeout, "an attempt granted from the fetched block");
        lease!.Dispose();
    }
}
