using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting;

/// <summary>The gatekeeper as actor callers see it: the protocol, driven through TestProbes.</summary>
public class GatekeeperProtocolTests : ActorQueueTestKit
{
    [Fact]
    public async Task Gatekeeper_must_grant_a_free_slot_with_the_request_id()
    {
        using var limiter = new ConcurrencyLimiter(2, name: "proto", system: Sys);
        var probe = CreateTestProbe();

        var granted = await limiter.AcquireGranted(probe, 42);

        Assert.Equal(new Status(1, 0, 2, null, "proto"), await this.StatusOf(limiter));
        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), probe.Ref);
        Assert.Equal(0, (await this.StatusOf(limiter)).Running);
    }

    /// <summary>
    /// An Ask's temporary actor would be the holder and stops at its first reply, which released the lease at once while
    /// the caller believed it held it: the gatekeeper refuses such an Acquire, saying to use Tell.
    /// </summary>
    [Fact]
    public async Task An_acquire_sent_with_Ask_is_rejected_as_invalid_saying_to_send_it_with_Tell()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);

        var reply = await limiter.Gatekeeper.Ask<object>(new Acquire("asked", 5), TimeSpan.FromSeconds(10));

        var rejected = Assert.IsType<Rejected>(reply);
        Assert.Equal((5L, RejectionReason.InvalidRequest), (rejected.RequestId, rejected.Kind));
        Assert.Contains("Tell", rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(0, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task Gatekeeper_must_answer_queued_then_granted_when_a_slot_frees()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        var held = await limiter.AcquireGranted(holder, 1);

        limiter.Gatekeeper.Tell(new Acquire("waiter", 7), waiter.Ref);
        await waiter.ExpectMsgAsync(new Queued(7, 1));
        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);

        var granted = await waiter.ExpectMsgAsync<Granted>();
        Assert.Equal(7, granted.RequestId);
        Assert.NotEqual(held.LeaseId, granted.LeaseId);
    }

    [Fact]
    public async Task Gatekeeper_must_reject_when_the_wait_queue_is_full()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 1, name: "tight", system: Sys);
        var probe = CreateTestProbe();
        await limiter.AcquireGranted(probe, 1);
        limiter.Gatekeeper.Tell(new Acquire("probe", 2), probe.Ref);
        await probe.ExpectMsgAsync<Queued>();

        limiter.Gatekeeper.Tell(new Acquire("probe", 3), probe.Ref);

        var rejected = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal(3, rejected.RequestId);
        Assert.Equal("Concurrency queue depth (2) exceeds max_queued (1) for tight", rejected.Reason);
        Assert.Equal(1, (await this.StatusOf(limiter)).Waiting);
    }

    [Fact]
    public async Task Gatekeeper_must_reject_a_request_id_already_in_use_by_the_same_actor()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var probe = CreateTestProbe();
        await limiter.AcquireGranted(probe, 5);

        limiter.Gatekeeper.Tell(new Acquire("probe", 5), probe.Ref);

        var rejected = await probe.ExpectMsgAsync<Rejected>();
        Assert.Contains("already in use", rejected.Reason);
        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task Cancelling_a_waiting_request_answers_cancelled_and_frees_its_place()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        var held = await limiter.AcquireGranted(holder, 1);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 2), waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();

        limiter.Gatekeeper.Tell(new CancelAcquire(2), waiter.Ref);

        await waiter.ExpectMsgAsync(new Cancelled(2));
        Assert.Equal(0, (await this.StatusOf(limiter)).Waiting);
        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);
        Assert.Equal(new Status(0, 0, 1, null, null), await this.StatusOf(limiter));
        Assert.False(waiter.HasMessages, "a withdrawn request is never granted");
    }

    [Fact]
    public async Task Cancelling_an_already_granted_request_releases_its_lease()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var probe = CreateTestProbe();
        await limiter.AcquireGranted(probe, 9);

        limiter.Gatekeeper.Tell(new CancelAcquire(9), probe.Ref);

        Assert.Equal(0, (await this.StatusOf(limiter)).Running);
        Assert.False(probe.HasMessages, "no reply for a request that was already granted");
    }

    [Fact]
    public async Task Releasing_an_unknown_lease_changes_nothing()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var probe = CreateTestProbe();
        var granted = await limiter.AcquireGranted(probe, 1);

        await EventFilter.Warning(contains: "unknown lease").ExpectOneAsync(async () =>
        {
            limiter.Gatekeeper.Tell(new Release(granted.LeaseId + 1000), probe.Ref);
            await Task.CompletedTask;
        });

        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task A_holder_actor_that_stops_has_its_leases_released_and_the_next_waiter_served()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        await limiter.AcquireGranted(holder, 1);
        await limiter.AcquireGranted(holder, 2);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 3), waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();

        Sys.Stop(holder.Ref);

        await waiter.ExpectMsgAsync<Granted>(g => Assert.Equal(3, g.RequestId));
        await Eventually(() => limiter.RunningCount == 1 && limiter.WaitingCount == 0, "the dead holder's two leases came back");
    }

    [Fact]
    public async Task A_waiting_actor_that_stops_leaves_the_queue()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = CreateTestProbe();
        var doomed = CreateTestProbe();
        var next = CreateTestProbe();
        var held = await limiter.AcquireGranted(holder, 1);
        limiter.Gatekeeper.Tell(new Acquire("doomed", 1), doomed.Ref);
        await doomed.ExpectMsgAsync<Queued>();
        limiter.Gatekeeper.Tell(new Acquire("next", 1), next.Ref);
        await next.ExpectMsgAsync<Queued>();

        Sys.Stop(doomed.Ref);
        await Eventually(() => limiter.WaitingCount == 1, "the stopped waiter left the queue");
        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);

        await next.ExpectMsgAsync<Granted>();
        Assert.Equal(new Status(1, 0, 1, null, null), await this.StatusOf(limiter));
    }

    [Fact]
    public async Task A_real_actor_holding_a_lease_frees_it_when_it_stops()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var reporter = CreateTestProbe();
        var worker = Sys.ActorOf(Props.Create(() => new LeaseHoldingActor(limiter.Gatekeeper, reporter.Ref)));
        await reporter.ExpectMsgAsync<Granted>();
        Assert.Equal(1, (await this.StatusOf(limiter)).Running);

        Sys.Stop(worker);

        await Eventually(() => limiter.RunningCount == 0, "the stopped actor's lease came back");
        using var lease = await limiter.AcquireAsync("after");
    }

    [Fact]
    public async Task Disposing_the_limiter_rejects_waiting_actors()
    {
        var limiter = new ConcurrencyLimiter(1, system: Sys);
        var probe = CreateTestProbe();
        await limiter.AcquireGranted(probe, 1);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 2), probe.Ref);
        await probe.ExpectMsgAsync<Queued>();

        await limiter.DisposeAsync();

        var rejected = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal(2, rejected.RequestId);
        Assert.Contains("disposed", rejected.Reason);
    }

    /// <summary>An actor that takes one slot when it starts and holds it for as long as it lives.</summary>
    private sealed class LeaseHoldingActor : ReceiveActor
    {
        public LeaseHoldingActor(IActorRef gatekeeper, IActorRef reporter)
        {
            Receive<Granted>(granted => reporter.Tell(granted));
            gatekeeper.Tell(new Acquire("holding-actor", 1));
        }
    }
}
