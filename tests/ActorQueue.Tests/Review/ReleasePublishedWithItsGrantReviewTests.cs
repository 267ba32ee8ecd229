using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Coordination;
using ActorQueue.Tests.Limiting;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of "a release that grants at once publishes its counts once, with the grant" (PermitGate.Release, Pump's
/// result), level 0 of the priority queue kept in a field, the meters skipping instruments nobody listens to, and the
/// lease's fast release (TurnInbox.TryReleaseNow). Each test checks what a listener, a meter or a turn must still see.
/// </summary>
public sealed class ReleasePublishedWithItsGrantReviewTests
{
    private readonly RecordingListener _listener = new();

    private static TestWaiter Offer(PermitGate gate, string name, int permits = 1, int priority = 0)
    {
        var waiter = new TestWaiter(name, permits, priority);
        gate.Offer(waiter);
        return waiter;
    }

    [Fact]
    public void A_release_granting_several_with_a_lost_grant_between_them_leaves_the_last_publish_exact()
    {
        var gate = new PermitGate(_listener, [new PermitPool(3)]);
        Offer(gate, "holder", permits: 3);
        var a = Offer(gate, "a");
        var b = Offer(gate, "b");
        var c = Offer(gate, "c");
        b.Withdrawn = true; // cancelled; its withdrawal has not reached the gate
        _listener.Log.Clear();

        gate.Release(new PermitDemand(3));

        Assert.True(a.IsGranted);
        Assert.False(b.IsGranted);
        Assert.True(c.IsGranted);
        Assert.Equal(
            ["publish 1/2", "granting a", "granted a", "publish 2/1", "granting b", "lost b", "publish 1/1", "publish 2/0", "granting c", "granted c"],
            _listener.Log);
        Assert.Equal(gate.Snapshot, _listener.Published);
        Assert.Equal(new PermitSnapshot(2, 1, 0), _listener.Published);
    }

    [Fact]
    public void A_release_whose_only_grant_is_lost_still_publishes_the_release()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)]);
        Offer(gate, "holder");
        var gone = Offer(gate, "gone");
        gone.Withdrawn = true;
        _listener.Log.Clear();

        gate.Release(PermitDemand.One);

        Assert.False(gone.IsGranted);
        Assert.Equal(new PermitSnapshot(0, 1, 0), _listener.Published);
        Assert.Equal(gate.Snapshot, _listener.Published);
    }

    [Fact]
    public void A_release_to_a_closed_gate_or_a_head_that_does_not_fit_is_published_alone()
    {
        var gate = new PermitGate(_listener, [new PermitPool(2)]);
        Offer(gate, "h1");
        Offer(gate, "h2");
        var big = Offer(gate, "big", permits: 2);
        _listener.Log.Clear();

        gate.Release(PermitDemand.One); // big does not fit yet
        Assert.Equal(["publish 1/1"], _listener.Log);

        gate.Close();
        _listener.Log.Clear();
        gate.Release(PermitDemand.One); // it would fit, but a closed gate grants nothing
        Assert.False(big.IsGranted);
        Assert.Equal(["publish 0/1"], _listener.Log);
        Assert.Equal(gate.Snapshot, _listener.Published);
    }

    [Fact]
    public void Levels_going_one_two_one_keep_membership_order_and_eviction_exact()
    {
        var queue = new PriorityWaiterQueue();
        var other = new PriorityWaiterQueue();
        var foreignHigh = new TestWaiter("foreign-high", priority: 7);
        var foreignZero = new TestWaiter("foreign-zero");
        other.Enqueue(foreignHigh);
        other.Enqueue(foreignZero);

        var a = new TestWaiter("a");
        queue.Enqueue(a);
        Assert.False(queue.Contains(foreignHigh)); // only level 0 here: a priority-7 waiter of another queue is not ours
        Assert.False(queue.Remove(foreignHigh));
        Assert.False(queue.Contains(foreignZero));
        Assert.False(queue.Remove(foreignZero));
        Assert.Equal(1, queue.Count);
        Assert.Equal(2, other.Count);

        var b = new TestWaiter("b", priority: 5);
        queue.Enqueue(b); // 1 -> 2 levels
        Assert.Equal(2, queue.LevelCount);
        Assert.Same(b, queue.Head);
        Assert.True(queue.HasAtOrAbove(5));
        Assert.True(queue.Remove(b)); // 2 -> 1
        Assert.Equal(1, queue.LevelCount);
        Assert.Same(a, queue.Head);
        Assert.False(queue.HasAtOrAbove(1));
        Assert.False(queue.Contains(b));
        Assert.False(queue.Remove(b));
        Assert.True(queue.Contains(a));

        var low = new TestWaiter("low", priority: -1);
        var c = new TestWaiter("c");
        queue.Enqueue(low);
        queue.Enqueue(c);
        Assert.Same(low, queue.NewestOfLowest);
        Assert.True(queue.Remove(low));
        Assert.Same(c, queue.NewestOfLowest);
        Assert.Equal(0, queue.LowestPriority);
        Assert.Equal(1, queue.LevelCount);

        Assert.True(queue.Remove(a));
        Assert.Same(c, queue.Head);
        Assert.True(queue.Remove(c));
        Assert.Null(queue.Head);
        Assert.Equal(0, queue.Count);
        Assert.True(other.Contains(foreignHigh) && other.Contains(foreignZero));
    }

    [Fact]
    public void A_full_gate_evicting_lowest_newest_across_levels_one_two_one_grants_in_order()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)], maxQueued: 2, whenFull: QueueFullPolicy.EvictLowestNewest);
        Offer(gate, "holder");
        var a = Offer(gate, "a");
        var b = Offer(gate, "b");
        var high = Offer(gate, "high", priority: 5); // evicts b, the newest of level 0; 1 -> 2 levels

        Assert.NotNull(b.Error);
        Assert.True(gate.Withdraw(high)); // 2 -> 1
        Assert.False(gate.Withdraw(high));
        var d = Offer(gate, "d");
        Assert.Equal(2, gate.Waiting);

        gate.Release(PermitDemand.One);
        Assert.True(a.IsGranted);
        Assert.False(d.IsGranted);
        gate.Release(PermitDemand.One);
        Assert.True(d.IsGranted);
        Assert.Equal(gate.Snapshot, _listener.Published);
        Assert.Equal(new PermitSnapshot(1, 0, 0), gate.Snapshot);
    }

    [Fact]
    public void A_meter_listener_attaching_mid_run_sums_the_changes_since_it_attached()
    {
        var name = $"review-mid-attach-{Guid.NewGuid():N}";
        var telemetry = new GatekeeperTelemetry(name);
        var metering = new MeteringListener(telemetry);
        var gate = new PermitGate(metering, [new PermitPool(2)]);

        // Before anyone listens to this limiter: 2 held, 2 waiting.
        Offer(gate, "h1");
        Offer(gate, "h2");
        Offer(gate, "w1");
        Offer(gate, "w2");
        var atAttach = gate.Snapshot;

        using var metrics = new LimiterMetrics(name);
        gate.Release(PermitDemand.One); // grants w1
        Offer(gate, "w3");
        gate.Release(PermitDemand.One); // grants w2
        gate.Release(PermitDemand.One); // grants w3
        gate.Release(PermitDemand.One);
        var end = gate.Snapshot;

        Assert.Equal((1L, 0), (end.InUse, end.Waiting));
        Assert.Equal((double)(end.InUse - atAttach.InUse), metrics.Value(ActorQueueTelemetry.LimiterRunning));
        Assert.Equal((double)(end.Waiting - atAttach.Waiting), metrics.Value(ActorQueueTelemetry.LimiterWaiting));
    }

    [Fact]
    public void A_meter_listening_from_the_start_sums_to_the_true_counts_through_granting_releases()
    {
        var name = $"review-from-start-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        var telemetry = new GatekeeperTelemetry(name);
        var gate = new PermitGate(new MeteringListener(telemetry), [new PermitPool(2)]);

        Offer(gate, "h1", permits: 2);
        Offer(gate, "a");
        Offer(gate, "b");
        Offer(gate, "c", permits: 2);
        gate.Release(new PermitDemand(2)); // grants a and b
        Assert.Equal((2.0, 1.0), (metrics.Value(ActorQueueTelemetry.LimiterRunning), metrics.Value(ActorQueueTelemetry.LimiterWaiting)));
        gate.Release(PermitDemand.One);
        gate.Release(PermitDemand.One); // grants c
        Assert.Equal((2.0, 0.0), (metrics.Value(ActorQueueTelemetry.LimiterRunning), metrics.Value(ActorQueueTelemetry.LimiterWaiting)));
        Assert.Equal(4.0, metrics.Value(ActorQueueTelemetry.LimiterAcquired)); // h1 at once; a, b and c waited
        Assert.Equal(6.0, metrics.Value(ActorQueueTelemetry.LimiterPermitsGranted));
    }

    [Fact]
    public void A_fault_in_a_release_now_is_contained_and_the_turn_given_back()
    {
        var inbox = new ThrowingReleaseInbox();

        Assert.True(inbox.ReleaseNow(3));

        Assert.Equal(["Taken", "Release 3", "Faulted <none>: boom 3", "Resting"], inbox.Events);
        Assert.False(inbox.IsTaken);
        Assert.True(inbox.Submit(new NamedOp("after")));
        Assert.Equal(["Taken", "Release 3", "Faulted <none>: boom 3", "Resting", "Taken", "Run after", "Resting"], inbox.Events);
        Assert.False(inbox.IsTaken);
    }

    /// <summary>A gate owner that meters as the gatekeeper does (its Publish feeds the up-down counters).</summary>
    private sealed class MeteringListener(GatekeeperTelemetry telemetry) : IPermitGateListener
    {
        private readonly TurnCounts _metered = new();

        public void Publish(in PermitSnapshot now) => _metered.Meter(telemetry, now.InUse, now.Waiting);

        public void Queued(PermitWaiter waiter)
        {
        }

        public void Granting(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void Granted(PermitWaiter waiter, in PermitGrant grant) => telemetry.Granted(waiter, grant);

        public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) => new InvalidOperationException(rejection.Kind.ToString());
    }

    private sealed class NamedOp(string name) : ITurnOp
    {
        public ITurnOp? NextOp { get; set; }

        public override string ToString() => name;
    }

    /// <summary>A turn whose fast release throws.</summary>
    private sealed class ThrowingReleaseInbox : TurnInbox
    {
        private readonly List<string> _events = [];

        public string[] Events => [.. _events];

        public bool ReleaseNow(int permits) => TryReleaseNow(permits);

        protected override void Taken() => _events.Add("Taken");

        protected override void Run(ITurnOp op) => _events.Add($"Run {op}");

        protected override void RunReleaseNow(int permits)
        {
            _events.Add($"Release {permits}");
            throw new InvalidOperationException($"boom {permits}");
        }

        protected override void Resting() => _events.Add("Resting");

        protected override void Pushing() => _events.Add("Pushing");

        protected override void Faulted(ITurnOp? op, Exception error) => _events.Add($"Faulted {op?.ToString() ?? "<none>"}: {error.Message}");
    }
}
