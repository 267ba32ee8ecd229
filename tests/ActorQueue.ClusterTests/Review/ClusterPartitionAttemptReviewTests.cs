using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A partitioned cluster limiter's <c>AttemptAcquire</c> (its <see cref="PartitionedRateLimiter{TResource}"/> adapter):
/// granted synchronously from the block the key's partition agent holds on this node, as the plain cluster limiter's
/// is. Before, it never granted: ASP.NET Core's middleware paid the async path for every request, and a caller that
/// only tries was refused for ever.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterPartitionAttemptReviewTests
{
    /// <summary>
    /// DEFECT (fixed). A caller that only tries is served after its first refusals: the refusal asks the key's agent
    /// (made for it) for a block, and a later attempt is granted from it; the partition's limit holds. Before, every
    /// attempt was refused (the poll timed out).
    /// </summary>
    [Fact]
    public async Task An_attempt_only_caller_on_a_partition_is_granted_after_its_first_refusal()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("p-attempt-only", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(5));
        using var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);

        var first = await AttemptUntilGrantedAsync(adapter, "tenant");
        var agent = await AgentOfAsync(cluster.Nodes[1], "p-attempt-only");
        using var pause = await AgentPause.BetweenMessagesAsync(agent); // not inside one of its ticks, its loan shut
        using var second = adapter.AttemptAcquire("tenant");
        Assert.True(second.IsAcquired, ReasonOf(second)); // the only agent: the whole limit is its block
        using (var third = adapter.AttemptAcquire("tenant"))
        {
            Assert.False(third.IsAcquired); // the partition's limit holds
        }

        pause.Dispose();
        var status = await limiter.GetStatusAsync("tenant");
        Assert.Equal((2, 0), (status.Running, status.Waiting));
        Assert.Equal(2, limiter.Partitions.Live["tenant"].Statistics.LocalRunning); // counted at once
        using (await AgentPause.BetweenMessagesAsync(agent)) // back into the open loan, not by a message the agent has yet to take
        {
            first.Dispose();
            Assert.Equal(1, limiter.Partitions.Live["tenant"].Statistics.LocalRunning);
        }
    }

    /// <summary>
    /// A request for a key on its way to the partitions' parent (its call returned) is not passed by a later attempt on
    /// that key: the facade suspends the key's loan before it sends it, and the parent announces it in the agent's loan
    /// before it counts it off. Here a heavy request (the whole limit, so it must wait for the claimed lease) is sent
    /// while one block permit is lent; an attempt made at once after it would take that permit past it.
    /// </summary>
    [Fact]
    public async Task An_attempt_does_not_pass_a_request_for_its_key_on_its_way()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("p-attempt-fifo", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(5));
        using var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var held = await AttemptUntilGrantedAsync(adapter, "tenant"); // the whole limit is the node's block: one claimed, one lent

        var heavy = limiter.AcquireAsync("tenant", permits: 2, source: "heavy").AsTask();
        using (var attempt = adapter.AttemptAcquire("tenant"))
        {
            Assert.False(attempt.IsAcquired); // the lent permit is the heavy request's (with the claimed one, once released)
        }

        Assert.False(heavy.IsCompleted);
        held.Dispose();
        await using (await heavy.WaitAsync(ClusterNodes.StepTimeout))
        {
            using var meanwhile = adapter.AttemptAcquire("tenant");
            Assert.False(meanwhile.IsAcquired); // the heavy lease holds the whole limit
            var status = await limiter.GetStatusAsync("tenant");
            Assert.Equal((2, 0), (status.Running, status.Waiting));
        }

        (await AttemptUntilGrantedAsync(adapter, "tenant")).Dispose(); // attempts are served again afterwards
    }

    /// <summary>
    /// The same, with the parent held back (a facade over an actor that never routes): a request's call has returned, so
    /// an attempt on its key is refused although the key's agent lent a permit before it (the facade suspended that
    /// loan), the key's live partition counts it on its way (so no agent of the key lends until the parent announced it;
    /// before helper 128 its stripe did, which held back every key of the stripe), and other keys' loans are untouched. Fails when the facade sends without suspending the live agent's loan.
    /// </summary>
    [Fact]
    public void A_request_on_its_way_to_the_parent_suspends_its_keys_lent_block_and_is_counted_in_its_partition()
    {
        var count = new PartitionCount();
        var tenant = Lending(count, "tenant", 2);
        var other = Lending(count, "other", 2);
        var limiter = new ClusterPartitionedLimiter("held-back", new ClusterLimit(2, null, null, QueueFullMode.RejectNewcomer), TimeSpan.FromMinutes(5),
            Akka.Actor.ActorRefs.Nobody, count, _ => { });
        var claimed = limiter.TryClaim("tenant", 1, "before");
        Assert.NotNull(claimed); // lent, nothing on its way: claimed with no message

        limiter.Post("tenant", new ActorQueue.Coordination.PermitDemand(2), 0, null, "heavy");
        Assert.Null(limiter.TryClaim("tenant", 1, "after")); // the lent permit is the request's to have first
        Assert.True(count.Live["tenant"].OnTheWay.Any); // no agent of the key lends again before the parent announced it
        Assert.False(count.Routing("tenant").Any); // counted in the live partition, not in its stripe (helper 128)
        Assert.True(tenant.Loan.IsSuspended);
        Assert.True(other.Loan.IsOpen);
        Assert.NotNull(limiter.TryClaim("other", 2, "other key")); // another key's block is not held back
        claimed!.Dispose();
    }

    /// <summary>A live partition of <paramref name="key"/> published in <paramref name="count"/>, its loan lending <paramref name="permits"/> as its agent would.</summary>
    private static LimiterCounts Lending(PartitionCount count, string key, int permits)
    {
        var local = new LimiterCounts();
        Assert.True(local.Loan.Lend(0, permits));
        count.Live[key] = new LivePartition(new LimiterCounts(), local, new LimitMirror(permits, null))
        {
            Claims = new ClaimedLeaseReleaser(local.Loan, Akka.Actor.ActorRefs.Nobody),
        };
        return local;
    }

    /// <summary>
    /// Attempt-only callers and waiting callers of one key on two nodes race: the key never has more than its limit held,
    /// both nodes end holding nothing, and once the blocks lingered back the partition has exactly its limit again (no
    /// permit lost, none given back twice).
    /// </summary>
    [Fact]
    public async Task Racing_attempts_and_acquires_on_two_nodes_never_hold_more_than_the_partitions_limit()
    {
        const int Limit = 3;
        await using var cluster = await ClusterNodes.StartAsync(3, "actorqueue.cluster.limiter-block-linger = 200ms");
        var limiters = cluster.Nodes.Skip(1)
                              .Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("p-attempt-race", maxRunning: Limit, maxQueued: null, TimeSpan.FromMinutes(5)))
                              .ToList();
        var adapters = limiters.Select(limiter => limiter.AsPartitionedRateLimiter<string>(key => key)).ToList();
        foreach (var adapter in adapters)
        {
            (await AttemptUntilGrantedAsync(adapter, "tenant")).Dispose(); // both nodes' agents live and have held a block
        }

        var running = 0;
        var maxSeen = 0;
        var attempted = 0;
        var callers = adapters.SelectMany((adapter, node) => Enumerable.Range(0, 4).Select(caller => Task.Run(async () =>
        {
            for (var turn = 0; turn < 60; turn++)
            {
                var waits = caller == 0 || (turn + caller) % 4 == 0; // caller 0 of each node only waits; the others mostly try
                var lease = waits ? await adapter.AcquireAsync("tenant", turn % 5 == 0 ? 2 : 1) : adapter.AttemptAcquire("tenant", turn % 7 == 0 ? 2 : 1);
                using (lease)
                {
                    if (!lease.IsAcquired)
                    {
                        await Task.Yield();
                        continue;
                    }

                    var permits = waits ? (turn % 5 == 0 ? 2 : 1) : (turn % 7 == 0 ? 2 : 1);
                    if (!waits)
                    {
                        Interlocked.Increment(ref attempted);
                    }

                    Poll.InterlockedMax(ref maxSeen, Interlocked.Add(ref running, permits));
                    await Task.Yield();
                    Interlocked.Add(ref running, -permits);
                }
            }
        })));
        await Task.WhenAll(callers).WaitAsync(ClusterNodes.StepTimeout);

        Assert.InRange(maxSeen, 1, Limit); // never above the partition's cluster-wide limit
        await Poll.UntilAsync(() => limiters.TrueForAll(limiter => limiter.Partitions.Live["tenant"].Statistics.LocalRunning == 0),
            ClusterNodes.StepTimeout, "both nodes hold nothing of the partition");
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[0], "tenant"), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal(0, status.Waiting);
        await AssertExactlyTheLimitAsync(limiters[1], "tenant", Limit);
    }

    /// <summary>
    /// A claimed lease keeps its partition live on its node (its block holds it) past idle timeouts in which another
    /// key's partition stopped; the key's limit stays taken meanwhile on the other node; once released, the partition
    /// idles out and its permit is counted once: the key has exactly its limit again.
    /// </summary>
    [Fact]
    public async Task A_claimed_lease_keeps_its_partition_alive_and_after_its_release_the_partition_idles_out_counting_it_once()
    {
        var idle = TimeSpan.FromMilliseconds(300);
        await using var cluster = await ClusterNodes.StartAsync(3, "actorqueue.cluster.limiter-block-linger = 100ms");
        var here = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("p-attempt-idle", maxRunning: 1, maxQueued: null, idle);
        var there = ActorQueueCluster.Get(cluster.Nodes[2]).PartitionedLimiter("p-attempt-idle", maxRunning: 1, maxQueued: null, idle);
        using var adapter = here.AsPartitionedRateLimiter<string>(key => key);
        var claimed = await AttemptUntilGrantedAsync(adapter, "tenant");

        // Another key made after the claim, with the same idle timeout, stops: the claimed key's agent would have by then.
        (await here.AcquireAsync("probe").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Poll.UntilAsync(() => !here.Partitions.Live.ContainsKey("probe"), ClusterNodes.StepTimeout, "the probe key's partition idled out");
        Assert.True(here.Partitions.Live.ContainsKey("tenant")); // the claimed lease keeps its partition
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(
            () => there.AcquireAsync("tenant", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout)); // still counted

        claimed.Dispose();
        await Poll.UntilAsync(() => here.PartitionCount == 0, ClusterNodes.StepTimeout, "the released key's partition idled out");
        using (var late = adapter.AttemptAcquire("tenant"))
        {
            Assert.False(late.IsAcquired); // no live partition: a fresh one is asked for
        }

        await AssertExactlyTheLimitAsync(there, "tenant", 1);
        (await AttemptUntilGrantedAsync(adapter, "tenant")).Dispose(); // a key made anew serves attempts again
        await Poll.UntilAsync(() => here.PartitionCount == 0, ClusterNodes.StepTimeout, "the partition idled out after attempts only");
    }

    /// <summary>
    /// A weighted attempt claims its permits from the block at once, on a plain and on a partitioned limiter, within the
    /// limit; before, only one-permit attempts were served on the plain limiter and none on a partitioned one.
    /// </summary>
    [Fact]
    public async Task Weighted_attempts_claim_their_permits_from_the_block_on_plain_and_partitioned_limiters()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var node = ActorQueueCluster.Get(cluster.Nodes[1]);
        var plainLimiter = node.Limiter("attempt-weighted", maxRunning: 3);
        var plain = plainLimiter.AsRateLimiter();
        var keyed = node.PartitionedLimiter("p-attempt-weighted", maxRunning: 3, maxQueued: null, TimeSpan.FromMinutes(5)).AsPartitionedRateLimiter<string>(key => key);

        // Each agent paused between its messages while the attempts are made: a tick under way has its loan shut.
        var one = await Poll.ValueAsync(() => Task.FromResult(plain.AttemptAcquire(1)), lease => lease.IsAcquired || Disposed(lease), ClusterNodes.StepTimeout);
        using (await AgentPause.BetweenMessagesAsync(plainLimiter.Agent))
        {
            using (var two = plain.AttemptAcquire(2))
            {
                Assert.True(two.IsAcquired, ReasonOf(two)); // the only agent: the whole limit of three is its block
                using var over = plain.AttemptAcquire(1);
                Assert.False(over.IsAcquired);
            }

            using (var again = plain.AttemptAcquire(2))
            {
                Assert.True(again.IsAcquired, ReasonOf(again)); // the weighted lease went back into the block whole
            }

            one.Dispose();
        }

        var keyedOne = await AttemptUntilGrantedAsync(keyed, "tenant");
        using (await AgentPause.BetweenMessagesAsync(await AgentOfAsync(cluster.Nodes[1], "p-attempt-weighted")))
        {
            using (var keyedTwo = keyed.AttemptAcquire("tenant", 2))
            {
                Assert.True(keyedTwo.IsAcquired, ReasonOf(keyedTwo));
                using var over = keyed.AttemptAcquire("tenant", 1);
                Assert.False(over.IsAcquired);
            }

            keyedOne.Dispose();
            using var all = keyed.AttemptAcquire("tenant", 3);
            Assert.True(all.IsAcquired, ReasonOf(all));
        }
    }

    /// <summary>
    /// DEFECT (fixed). The cluster limiter's <c>acquired</c> instrument counts the leases a node grants from its block:
    /// an acquire granted by the agent from the block, and attempts claimed from its loan (counted by the agent at its
    /// next message). Before, only the gatekeeper's grants counted: 2 where 5 were granted.
    /// </summary>
    [Fact]
    public async Task The_acquired_instrument_counts_leases_granted_and_claimed_from_a_block()
    {
        var name = $"attempt-metered-{Guid.NewGuid():N}";
        long acquired = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, meters) =>
        {
            if (instrument.Meter.Name == ActorQueue.Telemetry.ActorQueueTelemetry.Name && instrument.Name == ActorQueue.Telemetry.ActorQueueTelemetry.LimiterAcquired)
            {
                meters.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Value as string == name)
                {
                    Interlocked.Add(ref acquired, value);
                }
            }
        });
        listener.Start();
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter(name, maxRunning: 3);
        (await limiter.AcquireAsync("first").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose(); // the gatekeeper's grant: 1
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s is { Recovering: false, Waiting: 0 }, ClusterNodes.StepTimeout);
        (await limiter.AcquireAsync("block").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose(); // granted with the block: 2
        (await limiter.AcquireAsync("from-block").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose(); // the agent's grant from it: 3
        var adapter = limiter.AsRateLimiter();
        var claimed = await Poll.ValueAsync(() => Task.FromResult(adapter.AttemptAcquire(1)), lease => lease.IsAcquired || Disposed(lease), ClusterNodes.StepTimeout);
        using (await AgentPause.BetweenMessagesAsync(limiter.Agent)) // not inside a hello tick, its loan shut
        using (var second = adapter.AttemptAcquire(1))
        {
            Assert.True(second.IsAcquired, ReasonOf(second)); // claims: 4 and 5
        }

        claimed.Dispose();
        await limiter.GetStatusAsync(); // a message to the agent: it counts the claims made since its last one
        await Poll.UntilAsync(() => Interlocked.Read(ref acquired) == 5, ClusterNodes.StepTimeout, () => $"5 leases counted as acquired (counted {Interlocked.Read(ref acquired)})");
    }

    /// <summary>Blocks stay out until recalled.</summary>
    private const string KeepBlocks = "actorqueue.cluster.limiter-block-linger = 1h";

    /// <summary>The node's agent of the only key of partitioned limiter <paramref name="name"/>.</summary>
    private static Task<Akka.Actor.IActorRef> AgentOfAsync(Akka.Actor.ActorSystem node, string name) =>
        node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);

    /// <summary>Disposes a refused lease (a poll's discarded value) and says so.</summary>
    private static bool Disposed(RateLimitLease lease)
    {
        lease.Dispose();
        return false;
    }

    /// <summary>
    /// Exactly <paramref name="limit"/> permits of <paramref name="key"/> can be had (none lost), and one more waits (none
    /// given back twice); everything is released afterwards.
    /// </summary>
    private static async Task AssertExactlyTheLimitAsync(ClusterPartitionedLimiter limiter, string key, int limit)
    {
        await using var all = await limiter.AcquireAsync(key, limit, source: "all").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var extra = limiter.AcquireAsync(key, source: "extra").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter, key), s => s?.Waiting == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(limit, status.Running);
        Assert.False(extra.IsCompleted);
        all.Dispose();
        (await extra.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    /// <summary>Attempts <paramref name="key"/> until one is granted (each refusal asks for a block; no sleep in between but the poll's).</summary>
    internal static async Task<RateLimitLease> AttemptUntilGrantedAsync(PartitionedRateLimiter<string> adapter, string key, int permits = 1)
    {
        RateLimitLease? granted = null;
        await Poll.UntilAsync(() =>
        {
            var lease = adapter.AttemptAcquire(key, permits);
            if (lease.IsAcquired)
            {
                granted = lease;
                return true;
            }

            lease.Dispose();
            return false;
        }, ClusterNodes.StepTimeout, $"an attempt on partition {key} is granted");
        return granted!;
    }

    private static string ReasonOf(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) ? reason ?? "" : "(no reason)";
}
