using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Cluster;
using ActorQueue.Tests.Limiting;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Session 27's review of a partitioned limiter's actor surviving a throwing handler or key (<c>fix/partition-restart</c>):
/// what is counted for a request whose key throws on the actor's thread.
/// </summary>
public sealed class Session27ReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    /// <summary>
    /// A caller cancels while its request waits in the actor's mailbox, and its key then throws as the actor routes it:
    /// the caller was answered by its cancellation and turned away by nobody, so no <c>key_failed</c> rejection is
    /// counted (a gate counts nothing for a request withdrawn before it got there); a caller that did not cancel still
    /// counts one. Held in place by a gate, not timing: another key's hash holds the actor inside its routing while the
    /// caller sends and cancels. DEFECT (fixed): <c>PartitionShared.KeyFailed</c> metered before it looked whether the
    /// request was still waiting ("Assert.Equal() Failure: Expected 0, Actual 1").
    /// </summary>
    [Fact]
    public async Task A_caller_that_cancelled_before_its_key_threw_is_no_key_failed_rejection()
    {
        var name = $"review-s27-key-failed-cancelled-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        using var limiter = new PartitionedConcurrencyLimiter<RoutedKey>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var partitions = ((IPartitionedLimiter<RoutedKey>)limiter).Partitions;
        var routing = new RoutedKey.Gate();
        var held = limiter.AcquireAsync(new RoutedKey("h") { Holds = routing }).AsTask();
        await Eventually(() => routing.Entered.IsSet, "the actor is routing another key's call");

        using var cancel = new CancellationTokenSource();
        var cancelled = limiter.AcquireAsync(new RoutedKey("bad") { Throws = true }, cancellationToken: cancel.Token).AsTask(); // by message: one is on its way
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        routing.Go.Set();
        (await Within(held)).Dispose();
        await Eventually(() => !partitions.IsRouting, "the actor has routed the cancelled call");

        Assert.Equal(0.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.KeyFailedReason}"));
        await Assert.ThrowsAsync<ArgumentException>(() => Within(limiter.AcquireAsync(new RoutedKey("bad2") { Throws = true }).AsTask()));
        Assert.Equal(1.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.KeyFailedReason}"));
    }

    /// <summary>
    /// A key whose hash behaves as the actor looks its partition up and throws as it publishes the partition it made
    /// (<c>PartitionTable.TryAdd</c>): that call alone fails, with the key's exception in an <see cref="ArgumentException"/>,
    /// counted once as <c>key_failed</c>; nothing is published or left on its way, and the limiter serves the next call.
    /// Passed as found (a guard). Mutant: <c>Route</c> without its catch around <c>TryAdd</c> → the call failed through
    /// <c>AroundReceive</c> with an <see cref="InvalidOperationException"/> and no rejection counted.
    /// </summary>
    [Fact]
    public async Task A_key_that_throws_as_its_new_partition_is_published_fails_only_its_call()
    {
        var name = $"review-s27-key-failed-add-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        using var limiter = new PartitionedConcurrencyLimiter<RoutedKey>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var partitions = ((IPartitionedLimiter<RoutedKey>)limiter).Partitions;

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Within(limiter.AcquireAsync(new RoutedKey("bad") { ThrowsFromHash = 2 }).AsTask()));

        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Equal(1.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.KeyFailedReason}"));
        Assert.Equal(0, limiter.PartitionCount);
        await Eventually(() => !partitions.IsRouting, "nothing is left on its way to the actor");
        using var next = await Within(limiter.AcquireAsync(new RoutedKey("next")).AsTask());
        Assert.Equal(1, limiter.PartitionCount);
    }

    /// <summary>A key equal by name whose hash, inside the partitioned actor's routing, throws or holds the actor once at a gate.</summary>
    public sealed class RoutedKey(string name) : IEquatable<RoutedKey>
    {
        private Gate? _holds;

        /// <summary>Holds the actor inside its routing of this key, once.</summary>
        public Gate? Holds { init => _holds = value; }

        /// <summary>Throws inside the actor's routing of this key.</summary>
        public bool Throws { get; init; }

        /// <summary>Throws inside the actor's routing from the hash of that number on (1: the first); 0 for never.</summary>
        public int ThrowsFromHash { get; init; }

        private int _routedHashes;

        public bool Equals(RoutedKey? other) => other is not null && other.ToString() == name;

        public override bool Equals(object? obj) => Equals(obj as RoutedKey);

        public override int GetHashCode()
        {
            // By name: the actor is a ReceiveActor, its Route a private method of its own.
            var routing = new StackTrace().GetFrames().Any(frame => frame.GetMethod() is { Name: "Route" } method && method.DeclaringType == typeof(PartitionedGatekeeperActor));
            if (routing && (Throws || (ThrowsFromHash > 0 && Interlocked.Increment(ref _routedHashes) >= ThrowsFromHash)))
            {
                throw new InvalidOperationException($"key {name} cannot be hashed in the actor");
            }

            if (routing && Interlocked.Exchange(ref _holds, null) is { } gate)
            {
                gate.Entered.Set();
                gate.Go.Wait(TimeSpan.FromSeconds(30));
            }

            return StringComparer.Ordinal.GetHashCode(name);
        }

        public override string ToString() => name;

        /// <summary>Where a thread is held: set once it is, let go by the test.</summary>
        public sealed class Gate
        {
            public ManualResetEventSlim Entered { get; } = new();

            public ManualResetEventSlim Go { get; } = new();
        }
    }
}

/// <summary>
/// Session 27's review of the cluster limiter's block fetch on the gatekeeper's meter (<c>fix/cluster-limit-gaps</c>,
/// ea6abea): a fetch is the node agent's own question, not a caller's.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class Session27ClusterReviewTests
{
    /// <summary>
    /// A refused attempt makes the node's agent fetch a block; granted (the limit has room, nobody waits), the block is
    /// the agent's, and no caller was granted a lease by it: <c>acquired</c> counts the one caller's lease the
    /// gatekeeper granted and the one claimed from the block, as a refused fetch counts no rejection. The block is there
    /// (the next attempt claims from it; the agent counts the claim at its next message, which the test waits for).
    /// DEFECT (fixed): <c>TryGrantBlock</c> counted the fetch as an acquired lease (one more than the leases).
    /// </summary>
    [Fact]
    public async Task A_granted_block_fetch_is_no_callers_acquired_lease_on_the_meter()
    {
        var name = $"review-s27-fetch-granted-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var cluster = await ClusterNodes.StartAsync(1);
        var blockTaken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).StartLimiter(name, new ClusterLimit(4, null, null, QueueFullMode.RejectNewcomer),
            setup => Props.Create(() => new WatchingAgent(setup, WatchingAgent.BlockGranted, blockTaken)), _ => { }, register: true);
        var adapter = limiter.AsRateLimiter();
        await using var held = await limiter.AcquireAsync("holder").AsTask().WaitAsync(ClusterNodes.StepTimeout); // its first: no block, it follows the gatekeeper

        using (var refused = adapter.AttemptAcquire(1))
        {
            Assert.False(refused.IsAcquired); // no block yet: the agent fetches one
        }

        await blockTaken.Task.WaitAsync(ClusterNodes.StepTimeout);
        using var pause = await AgentPause.BetweenMessagesAsync(limiter.Agent); // not inside a later message (a hello tick), its loan shut
        using var claimed = adapter.AttemptAcquire(1);
        pause.Dispose();
        Assert.True(claimed.IsAcquired, "the fetched block lends its permits");
        await limiter.GetStatusAsync(); // through the gatekeeper, after the fetch's grant was metered
        await limiter.Agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout); // the agent's reclaim after the claim counted it

        // The holder's lease and the lease claimed from the block (counted by the agent since helper 121), not the fetch.
        Assert.Equal(2.0, metrics.Value(ActorQueueTelemetry.LimiterAcquired));
    }

    /// <summary>
    /// The tokens a cluster model-API adapter reports queued (the agent's running sum, <c>PendingRequests.Demand</c>) leave
    /// with a call that cancels and with one whose wait times out on this node, not only with a grant, while the slot is
    /// still held. Passed as found (a guard). Mutant: <c>HandleFacadeCancel</c> without its <c>PublishLocal</c> → "the
    /// cancelled call's tokens left" timed out at 300.
    /// </summary>
    [Fact]
    public async Task A_model_api_adapters_queued_tokens_leave_with_a_cancelled_and_a_timed_out_call()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).ModelApiLimiter($"review-s27-queued-{Guid.NewGuid():N}",
            new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 10, tokensPerPeriod: 1000, TimeSpan.FromHours(1)));
        var adapter = limiter.AsRateLimiter();
        await using var held = await limiter.AcquireAsync(1).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        long Queued() => adapter.GetStatistics()!.CurrentQueuedCount;

        using var cancel = new CancellationTokenSource();
        var cancelled = adapter.AcquireAsync(300, cancel.Token).AsTask();
        await Poll.UntilAsync(() => Queued() == 300, ClusterNodes.StepTimeout, () => $"the call waits (queued {Queued()})");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(ClusterNodes.StepTimeout));
        await Poll.UntilAsync(() => Queued() == 0, ClusterNodes.StepTimeout, () => $"the cancelled call's tokens left (queued {Queued()})");

        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() =>
            limiter.AcquireAsync(200, waitTimeout: TimeSpan.FromMilliseconds(100)).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        await Poll.UntilAsync(() => Queued() == 0 && limiter.LocalWaitingCount == 0, ClusterNodes.StepTimeout,
            () => $"the timed-out call's tokens left (queued {Queued()})");
    }
}
