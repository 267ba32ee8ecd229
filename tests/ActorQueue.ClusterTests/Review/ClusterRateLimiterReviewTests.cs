using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the cluster limiters' .NET rate-limiting adapters (commit 4e9d72a) and of the first-contact fix: the
/// adapters against <see cref="RateLimiter"/>'s contract (cancellation, disposal, leases disposed twice, model-API
/// leases), refusals with their retry-after, and a node agent's first requests at a gatekeeper.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterRateLimiterReviewTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private static Task<T> Within<T>(Task<T> task) => task.WaitAsync(ClusterNodes.StepTimeout);

    private static Task<T> Within<T>(ValueTask<T> task) => task.AsTask().WaitAsync(ClusterNodes.StepTimeout);

    private static Task<ClusterLimiterStatus?> StatusUntilAsync(ClusterConcurrencyLimiter limiter, Func<ClusterLimiterStatus, bool> until) =>
        Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), status => status is not null && until(status), ClusterNodes.StepTimeout);

    private static Task<ClusterLimiterStatus?> StatusUntilAsync(ClusterPartitionedLimiter limiter, string key, Func<ClusterLimiterStatus, bool> until) =>
        Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter, key), status => status is not null && until(status), ClusterNodes.StepTimeout);

    [Fact]
    public async Task A_cancelled_adapter_waiter_leaves_nothing_held_or_waiting()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("cancelled", maxRunning: 1)).ToList();
        var adapter = limiters[1].AsRateLimiter();
        var held = await Within(limiters[0].AcquireAsync());
        using var cancel = new CancellationTokenSource();
        var waiting = adapter.AcquireAsync(1, cancel.Token).AsTask();
        await StatusUntilAsync(limiters[0], status => status is { Running: 1, Waiting: 1 });

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(ClusterNodes.StepTimeout));
        held.Dispose();

        await StatusUntilAsync(limiters[0], status => status is { Running: 0, Waiting: 0 });
        using (var lease = await Within(adapter.AcquireAsync(1)))
        {
            Assert.True(lease.IsAcquired);
        }

        await StatusUntilAsync(limiters[0], status => status is { Running: 0, Waiting: 0 });
        Assert.Equal((0L, 1L), (adapter.GetStatistics()!.TotalFailedLeases, adapter.GetStatistics()!.TotalSuccessfulLeases));
    }

    [Fact]
    public async Task An_adapter_lease_disposed_twice_gives_its_permits_back_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-blocks = off");
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("twice", maxRunning: 2)).ToList();
        var adapter = limiters[1].AsRateLimiter();
        var lease = await Within(adapter.AcquireAsync(1));
        Assert.True(lease.IsAcquired);
        using var other = await Within(limiters[0].AcquireAsync());
        await StatusUntilAsync(limiters[0], status => status.Running == 2);

        lease.Dispose();
        lease.Dispose();

        await StatusUntilAsync(limiters[0], status => status.Running == 1);
        var third = limiters[0].AcquireAsync().AsTask();
        using (await third.WaitAsync(ClusterNodes.StepTimeout))
        {
            var status = await StatusUntilAsync(limiters[0], s => s.Running == 2);
            Assert.Equal(2, status!.Running); // the second dispose freed nothing more: the holder and the third caller hold both
        }
    }

    [Fact]
    public async Task A_model_api_adapter_lease_frees_its_slot_and_charges_its_tokens()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 10, tokensPerPeriod: 100, Hour);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).ModelApiLimiter("llm-slot", options)).ToList();
        var adapter = limiters[1].AsRateLimiter();

        var lease = await Within(adapter.AcquireAsync(30));
        Assert.True(lease.IsAcquired);
        var waiter = limiters[0].AcquireAsync(10).AsTask();
        var status = await Poll.ValueAsync(() => limiters[0].GetStatusAsync(), s => s.Waiting == 1, ClusterNodes.StepTimeout);
        Assert.Equal((1, 70L), (status.Running, status.TokensAvailable));
        lease.Dispose();
        lease.Dispose();

        using (var next = await waiter.WaitAsync(ClusterNodes.StepTimeout))
        {
            Assert.Equal(10, next.EstimatedTokens);
        }

        status = await Poll.ValueAsync(() => limiters[0].GetStatusAsync(), s => s.Running == 0, ClusterNodes.StepTimeout);
        Assert.Equal((0, 8L, 60L), (status.Waiting, status.RequestsAvailable, status.TokensAvailable));
    }

    [Fact]
    public async Task A_partitioned_model_api_adapter_refused_by_a_partitions_rate_has_its_retry_after()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var options = new ModelApiLimiterOptions(maxConcurrent: 4, requestsPerPeriod: 1, tokensPerPeriod: 1000, Hour) { MaxQueued = 0 };
        var adapters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedModelApiLimiter<string>("llm-keys", options, Hour)
                                                                        .AsPartitionedRateLimiter<string>(resource => resource)).ToList();

        using (var first = await Within(adapters[0].AcquireAsync("a", 5)))
        {
            Assert.True(first.IsAcquired);
        }

        using var here = await Within(adapters[0].AcquireAsync("a", 5));
        using var there = await Within(adapters[1].AcquireAsync("a", 5));

        Assert.False(here.IsAcquired);
        Assert.False(there.IsAcquired);
        Assert.True(here.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan hereRetry), "the refusal on the node that already followed the partition says when to retry");
        Assert.True(there.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan thereRetry), "the refusal of a node's first request says when to retry");
        Assert.InRange(hereRetry, TimeSpan.FromTicks(1), Hour);
        Assert.InRange(thereRetry, TimeSpan.FromTicks(1), Hour);
    }

    [Fact]
    public async Task Disposing_the_limiter_ends_an_adapters_wait_and_the_gatekeeper_forgets_it()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("disposed-under", maxRunning: 1)).ToList();
        var adapter = limiters[1].AsRateLimiter();
        using var held = await Within(limiters[0].AcquireAsync());
        var waiting = adapter.AcquireAsync(1).AsTask();
        await StatusUntilAsync(limiters[0], status => status is { Running: 1, Waiting: 1 });

        await limiters[1].DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);

        using var refused = await waiting.WaitAsync(ClusterNodes.StepTimeout); // a failed lease, as RateLimiting's own limiters give their waiters
        Assert.False(refused.IsAcquired);
        await StatusUntilAsync(limiters[0], status => status is { Running: 1, Waiting: 0 });
    }

    [Fact]
    public async Task A_fresh_agents_zero_timeout_request_on_a_serving_gatekeeper_is_granted_when_a_permit_is_free()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var first = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("impatient-late", maxRunning: 2);
        using var held = await Within(first.AcquireAsync());
        var late = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("impatient-late", maxRunning: 2, waitTimeout: TimeSpan.Zero);

        using var lease = await Within(late.AsRateLimiter().AcquireAsync(1));

        Assert.True(lease.IsAcquired, lease.TryGetMetadata(MetadataName.ReasonPhrase, out var why) ? why : "no reason");
        await StatusUntilAsync(first, status => status.Running == 2);
    }

    /// <summary>
    /// A cluster partitioned adapter's <c>GetStatistics(resource)</c> totals are that key's partition's on this node, as
    /// the local adapter's are (and RateLimiting's own): a lease granted and one refused for "a" do not show for "b".
    /// Failed before: the totals were the adapter's, so "b" read (2, 1).
    /// </summary>
    [Fact]
    public async Task A_partitioned_adapters_statistics_of_a_key_count_only_that_keys_leases()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("stats-per-key", maxRunning: 1, maxQueued: 0, Hour);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using var a = await Within(adapter.AcquireAsync("a"));
        using var refused = await Within(adapter.AcquireAsync("a"));
        using var b = await Within(adapter.AcquireAsync("b"));
        Assert.Equal((true, false, true), (a.IsAcquired, refused.IsAcquired, b.IsAcquired));

        var (ofA, ofB) = (adapter.GetStatistics("a")!, adapter.GetStatistics("b")!);

        Assert.Equal((1L, 1L), (ofA.TotalSuccessfulLeases, ofA.TotalFailedLeases));
        Assert.Equal((1L, 0L), (ofB.TotalSuccessfulLeases, ofB.TotalFailedLeases));
    }

    [Fact]
    public async Task A_partition_restarted_on_a_node_after_idleness_is_served_and_meets_the_bound()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("restart-keys", maxRunning: 2, maxQueued: 0, TimeSpan.FromMilliseconds(300))).ToList();
        var adapter = limiters[1].AsPartitionedRateLimiter<string>(resource => resource);
        using var held = await Within(limiters[0].AcquireAsync("a"));
        using (var once = await Within(adapter.AcquireAsync("a")))
        {
            Assert.True(once.IsAcquired);
        }

        await Poll.UntilAsync(() => limiters[1].PartitionCount == 0, ClusterNodes.StepTimeout, "the partition's agent on the second node stops for idleness");
        Assert.Null(adapter.GetStatistics("a"));

        using var again = await Within(adapter.AcquireAsync("a"));
        Assert.True(again.IsAcquired, again.TryGetMetadata(MetadataName.ReasonPhrase, out var why) ? why : "no reason");
        await StatusUntilAsync(limiters[0], "a", status => status.Running == 2);
        using var refused = await Within(adapter.AcquireAsync("a"));
        Assert.False(refused.IsAcquired); // full, and max_queued 0
        var status = await StatusUntilAsync(limiters[0], "a", _ => true);
        Assert.Equal((2, 0), (status!.Running, status.Waiting));
    }

    [Fact]
    public async Task A_partitioned_model_api_adapter_lease_frees_its_slot_once_and_charges_its_tokens()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 10, tokensPerPeriod: 100, Hour);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedModelApiLimiter<string>("llm-slot-keys", options, Hour)).ToList();
        var adapter = limiters[1].AsPartitionedRateLimiter<string>(resource => resource);

        var lease = await Within(adapter.AcquireAsync("a", 30));
        Assert.True(lease.IsAcquired);
        var waiter = limiters[0].AcquireAsync("a", 10).AsTask();
        var status = await Poll.ValueAsync(() => limiters[0].GetStatusAsync("a"), s => s.Waiting == 1, ClusterNodes.StepTimeout);
        Assert.Equal((1, 70L), (status.Running, status.TokensAvailable));
        lease.Dispose();
        lease.Dispose();

        using (await waiter.WaitAsync(ClusterNodes.StepTimeout))
        {
            var holding = await Poll.ValueAsync(() => limiters[0].GetStatusAsync("a"), s => s.Waiting == 0, ClusterNodes.StepTimeout);
            Assert.Equal(1, holding.Running);
        }

        status = await Poll.ValueAsync(() => limiters[0].GetStatusAsync("a"), s => s.Running == 0, ClusterNodes.StepTimeout);
        Assert.Equal((0, 8L, 60L), (status.Waiting, status.RequestsAvailable, status.TokensAvailable));
    }

    [Fact]
    public async Task Negative_permits_are_refused_by_every_adapter()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var plain = node.Limiter("negative", maxRunning: 2).AsRateLimiter();
        var rates = node.ModelApiLimiter("negative-rates", new ModelApiLimiterOptions(2, 10, 100, Hour)).AsRateLimiter();
        var keys = node.PartitionedLimiter("negative-keys", 2, null, Hour).AsPartitionedRateLimiter<string>(resource => resource);
        var rateKeys = node.PartitionedModelApiLimiter<string>("negative-rate-keys", new ModelApiLimiterOptions(2, 10, 100, Hour), Hour).AsPartitionedRateLimiter<string>(resource => resource);

        Assert.Throws<ArgumentOutOfRangeException>(() => plain.AttemptAcquire(-1));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => plain.AcquireAsync(-1).AsTask());
        Assert.Throws<ArgumentOutOfRangeException>(() => rates.AttemptAcquire(-1));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => rates.AcquireAsync(-1).AsTask());
        Assert.Throws<ArgumentOutOfRangeException>(() => keys.AttemptAcquire("a", -1));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => keys.AcquireAsync("a", -1).AsTask());
        Assert.Throws<ArgumentOutOfRangeException>(() => rateKeys.AttemptAcquire("a", -1));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => rateKeys.AcquireAsync("a", -1).AsTask());
    }

    [Fact]
    public async Task A_new_limiters_first_requests_meet_max_queued()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("first-bound", maxRunning: 1, maxQueued: 0);
        var adapter = limiter.AsRateLimiter();

        var first = adapter.AcquireAsync(1).AsTask();
        var second = adapter.AcquireAsync(1).AsTask();

        using var one = await first.WaitAsync(ClusterNodes.StepTimeout);
        Assert.True(one.IsAcquired);
        var status = await StatusUntilAsync(limiter, s => s.Running == 1 && !s.Recovering);
        Assert.True(status!.Waiting == 0, $"max_queued is 0, yet {status.Waiting} of the limiter's first requests wait at its gatekeeper");
        using var two = await second.WaitAsync(ClusterNodes.StepTimeout);
        Assert.False(two.IsAcquired);
    }

    [Fact]
    public async Task A_new_keys_first_requests_meet_max_queued()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("first-bound-keys", maxRunning: 1, maxQueued: 0, Hour);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);

        var burst = Enumerable.Range(0, 5).Select(_ => adapter.AcquireAsync("k").AsTask()).ToList(); // a tenant's first burst

        var status = await StatusUntilAsync(limiter, "k", s => s.Running == 1 && !s.Recovering);
        Assert.True(status!.Waiting == 0, $"max_queued is 0, yet {status.Waiting} of the key's first requests wait at its gatekeeper");
        var leases = await Task.WhenAll(burst).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(4, leases.Count(lease => !lease.IsAcquired));
    }

    [Fact]
    public async Task More_permits_than_a_shrunk_partition_has_are_refused_naming_permit_count()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("shrunk-keys", maxRunning: 2, maxQueued: null, Hour);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using (var warm = await Within(adapter.AcquireAsync("a")))
        {
            limiter.Resize("a", maxRunning: 1);
            await StatusUntilAsync(limiter, "a", status => status.MaxRunning == 1);
        }

        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Within(adapter.AcquireAsync("a", 2)));

        Assert.Equal("permitCount", error.ParamName); // RateLimiter's parameter, as the adapter's own check names it
    }

    [Fact]
    public async Task A_model_api_adapter_asking_more_tokens_than_the_gatekeepers_period_is_told_so_in_tokens()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var first = ActorQueueCluster.Get(cluster.Nodes[0]).ModelApiLimiter("llm-tokens", new ModelApiLimiterOptions(2, 10, tokensPerPeriod: 100, Hour));
        using (await Within(first.AcquireAsync(1)))
        {
        }

        var later = ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter("llm-tokens", new ModelApiLimiterOptions(2, 10, tokensPerPeriod: 1000, Hour));

        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Within(later.AsRateLimiter().AcquireAsync(500)));

        Assert.DoesNotContain("max_running", error.Message, StringComparison.Ordinal); // 500 tokens against 100 tokens a period, not slots
        Assert.Equal("permitCount", error.ParamName);
    }

    [Fact]
    public async Task A_partitioned_adapters_statistics_follow_a_resized_partition_and_its_waiters()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("stats-keys", maxRunning: 2, maxQueued: null, Hour)).ToList();
        var adapter = limiters[1].AsPartitionedRateLimiter<string>(resource => resource);
        using var first = await Within(adapter.AcquireAsync("a"));
        limiters[0].Resize("a", maxRunning: 1);
        await StatusUntilAsync(limiters[0], "a", status => status.MaxRunning == 1);
        var waiting = adapter.AcquireAsync("a").AsTask();
        await StatusUntilAsync(limiters[0], "a", status => status is { Running: 1, Waiting: 1 });

        // The gatekeeper has queued it; this node's figures follow once its queued reply arrives (read before, they were
        // still those of the grant: one permit free of two, nobody queued).
        var statistics = await Poll.ValueAsync(() => Task.FromResult(adapter.GetStatistics("a")!), s => s.CurrentQueuedCount == 1, ClusterNodes.StepTimeout);

        Assert.Equal((0L, 1L), (statistics.CurrentAvailablePermits, statistics.CurrentQueuedCount)); // as this node heard with its queued reply
        first.Dispose();
        using var second = await waiting.WaitAsync(ClusterNodes.StepTimeout);
        Assert.True(second.IsAcquired);
    }

    [Fact]
    public async Task A_model_api_adapter_refused_for_a_busy_slot_with_rates_to_spare_has_no_retry_after()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 100, tokensPerPeriod: 1000, Hour) { MaxQueued = 0 };
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).ModelApiLimiter("llm-busy", options)).ToList();
        using var held = await Within(limiters[0].AcquireAsync(1));

        using var refused = await Within(limiters[1].AsRateLimiter().AcquireAsync(1));

        Assert.False(refused.IsAcquired);
        Assert.False(refused.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retry), $"only a release frees the slot, yet the lease says retry after {retry}");
    }

    [Fact]
    public async Task Adapter_callers_cancelling_at_any_moment_on_two_nodes_leave_nothing_held()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("churn", maxRunning: 2)).ToList();
        var keyed = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("churn-keys", maxRunning: 2, maxQueued: null, Hour)).ToList();
        var calls = new List<Task>();
        for (var i = 0; i < 60; i++)
        {
            var node = i % 2;
            var cancelAfter = TimeSpan.FromMilliseconds(i % 7);
            calls.Add(CallAsync(cancel => limiters[node].AsRateLimiter().AcquireAsync(1 + (i % 2), cancel), cancelAfter));
            calls.Add(CallAsync(cancel => keyed[node].AsPartitionedRateLimiter<string>(resource => resource).AcquireAsync("k", 1 + (i % 2), cancel), cancelAfter));
        }

        await Task.WhenAll(calls).WaitAsync(ClusterNodes.StepTimeout);

        await StatusUntilAsync(limiters[0], status => status is { Running: 0, Waiting: 0 });
        await StatusUntilAsync(keyed[0], "k", status => status is { Running: 0, Waiting: 0 });
        await Poll.UntilAsync(() => limiters.All(limiter => limiter is { LocalRunningCount: 0, LocalWaitingCount: 0 }), ClusterNodes.StepTimeout, "nothing held or waiting on either node");

        static async Task CallAsync(Func<CancellationToken, ValueTask<RateLimitLease>> acquire, TimeSpan cancelAfter)
        {
            using var cancel = new CancellationTokenSource(cancelAfter);
            try
            {
                using var lease = await acquire(cancel.Token);
                await Task.Yield();
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
