using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>Races inside the gatekeeper, made deterministic by driving its internal messages in a known order.</summary>
public class GatekeeperActorTests : ActorQueueTestKit
{
    private (IActorRef Gatekeeper, LimiterCounts Counts) NewGatekeeper(int maxRunning)
    {
        var counts = new LimiterCounts();
        return (Sys.ActorOf(GatekeeperActor.Props(maxRunning, null, null, "test", counts)), counts);
    }

    [Fact]
    public async Task A_slot_granted_to_a_waiter_that_cancelled_at_the_same_instant_passes_to_the_next()
    {
        var (gatekeeper, counts) = NewGatekeeper(1);
        var holder = new AcquireRequest("holder", gatekeeper, signalQueued: false);
        var cancelling = new AcquireRequest("cancelling", gatekeeper, signalQueued: false);
        var next = new AcquireRequest("next", gatekeeper, signalQueued: false);
        gatekeeper.Tell(holder);
        gatekeeper.Tell(cancelling);
        gatekeeper.Tell(next);
        var lease = await Within(holder.Completion.AsTask());
        await Eventually(() => counts.Waiting == 2, "two wait");

        // The caller's token fires: its completion is cancelled, but its CancelWaiting has not reached the gatekeeper.
        Assert.True(cancelling.TryCancel(CancellationToken.None));
        lease.Dispose();

        var nextLease = await Within(next.Completion.AsTask());
        Assert.Equal("next", nextLease.Source);
        await Eventually(() => counts.Running == 1 && counts.Waiting == 0, "the cancelled waiter was skipped");
        nextLease.Dispose();
        await Eventually(() => counts.Running == 0, "nothing leaked");
    }

    [Fact]
    public async Task A_request_cancelled_before_it_arrives_is_never_queued()
    {
        var (gatekeeper, counts) = NewGatekeeper(1);
        var holder = new AcquireRequest("holder", gatekeeper, signalQueued: false);
        gatekeeper.Tell(holder);
        var lease = await Within(holder.Completion.AsTask());
        var late = new AcquireRequest("late", gatekeeper, signalQueued: false);
        Assert.True(late.TryCancel(CancellationToken.None));

        gatekeeper.Tell(late);
        var probe = CreateTestProbe();
        gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);

        var status = await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        Assert.Equal((1, 0), (status.Running, status.Waiting));
        lease.Dispose();
        await Eventually(() => counts.Running == 0, "released");
    }

    [Fact]
    public async Task A_queued_signal_reports_the_waiting_count_and_minus_one_for_an_immediate_grant()
    {
        var (gatekeeper, _) = NewGatekeeper(1);
        var first = new AcquireRequest("first", gatekeeper, signalQueued: true);
        var second = new AcquireRequest("second", gatekeeper, signalQueued: true);
        gatekeeper.Tell(first);
        gatekeeper.Tell(second);

        Assert.Equal(-1, await Within(first.QueuedSignal!.Task));
        Assert.Equal(1, await Within(second.QueuedSignal!.Task));
        (await Within(first.Completion.AsTask())).Dispose();
        (await Within(second.Completion.AsTask())).Dispose();
    }
}
