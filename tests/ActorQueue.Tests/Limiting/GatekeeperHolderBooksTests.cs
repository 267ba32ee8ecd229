using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gatekeeper's books of actor callers: an idle caller stays watched (no watch and unwatch per acquire cycle), and
/// idle callers are forgotten in bulk, never one that still holds or waits; a lease leaves its holder's books once,
/// whoever releases it, and a stopped caller gives back exactly what it held and waited for.
/// </summary>
public class GatekeeperHolderBooksTests : ActorQueueTestKit
{
    private const int Callers = GatekeeperActor.IdleHoldersKept * 2 + 100;

    [Fact]
    public async Task Many_callers_that_went_idle_keep_the_books_bounded()
    {
        using var limiter = new ConcurrencyLimiter(4, system: Sys);

        await CycleOnce(limiter, Callers);

        var books = await limiter.Gatekeeper.Ask<int>(CountHolders.Instance, TimeSpan.FromSeconds(10));
        Assert.InRange(books, 0, GatekeeperActor.IdleHoldersKept + 1);
    }

    [Fact]
    public async Task A_sweep_of_idle_callers_keeps_a_holder_whose_stop_still_gives_its_slot_back()
    {
        using var limiter = new ConcurrencyLimiter(4, system: Sys);
        var holder = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("holder", 1), holder.Ref);
        await holder.ExpectMsgAsync<Granted>();

        await CycleOnce(limiter, Callers); // sweeps run while the holder holds

        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
        Sys.Stop(holder.Ref);
        await Eventually(() => limiter.RunningCount == 0, "the stopped holder's slot came back");
    }

    [Fact]
    public async Task A_lease_released_twice_gives_its_permits_back_once()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var first = CreateTestProbe();
        var second = CreateTestProbe();
        var lease = await limiter.AcquireGranted(first, 1);
        await limiter.AcquireGranted(second, 1);

        limiter.Gatekeeper.Tell(new Release(lease.LeaseId), first.Ref);
        await EventFilter.Warning(contains: "unknown lease").ExpectOneAsync(async () =>
        {
            limiter.Gatekeeper.Tell(new Release(lease.LeaseId), first.Ref);
            await Task.CompletedTask;
        });

        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task A_lease_released_by_another_actor_leaves_its_holders_books()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var holder = CreateTestProbe();
        var other = CreateTestProbe();
        var lease = await limiter.AcquireGranted(holder, 1);

        limiter.Gatekeeper.Tell(new Release(lease.LeaseId), other.Ref);

        // The request id is free again for its holder, and its stop gives nothing back a second time.
        await limiter.AcquireGranted(holder, 1);
        await limiter.AcquireGranted(other, 1);
        Sys.Stop(holder.Ref);
        await Eventually(() => limiter.RunningCount == 1, "only the stopped holder's own lease came back");
        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task A_stopped_holder_with_a_held_lease_and_a_wait_gives_back_both()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var doomed = CreateTestProbe();
        var next = CreateTestProbe();
        await limiter.AcquireGranted(doomed, 1);
        limiter.Gatekeeper.Tell(new Acquire("doomed", 2) { Permits = 2 }, doomed.Ref);
        await doomed.ExpectMsgAsync<Queued>();
        limiter.Gatekeeper.Tell(new Acquire("next", 1), next.Ref);
        await next.ExpectMsgAsync<Queued>(); // behind the head that needs both permits

        Sys.Stop(doomed.Ref);

        await next.ExpectMsgAsync<Granted>(g => Assert.Equal(1, g.RequestId));
        Assert.Equal((1, 0), await RunningAndWaiting(limiter));
    }

    [Fact]
    public async Task A_stopped_holder_whose_first_wait_blocked_its_second_gives_both_back_and_keeps_the_cap()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var holder = CreateTestProbe();
        var doomed = CreateTestProbe();
        await limiter.AcquireGranted(holder, 1);
        limiter.Gatekeeper.Tell(new Acquire("doomed", 1) { Permits = 2 }, doomed.Ref);
        await doomed.ExpectMsgAsync<Queued>();
        limiter.Gatekeeper.Tell(new Acquire("doomed", 2), doomed.Ref);
        await doomed.ExpectMsgAsync<Queued>(); // it would fit, but waits behind its own head

        Sys.Stop(doomed.Ref);
        await Eventually(() => limiter.WaitingCount == 0, "the stopped actor's waits left the queue");

        // One permit is still held by the live holder: one more fits, a second waits.
        Assert.Equal((1, 0), await RunningAndWaiting(limiter));
        var late = CreateTestProbe();
        await limiter.AcquireGranted(late, 1);
        limiter.Gatekeeper.Tell(new Acquire("late", 2), late.Ref);
        await late.ExpectMsgAsync<Queued>();
    }

    [Fact]
    public async Task A_request_id_waiting_beside_a_held_one_is_refused_while_it_waits()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var probe = CreateTestProbe();
        var held = await limiter.AcquireGranted(probe, 1);
        limiter.Gatekeeper.Tell(new Acquire("probe", 2), probe.Ref);
        await probe.ExpectMsgAsync<Queued>();

        limiter.Gatekeeper.Tell(new Acquire("probe", 2), probe.Ref);

        await probe.ExpectMsgAsync<Rejected>(r => Assert.Equal((2L, RejectionReason.InvalidRequest), (r.RequestId, r.Kind)));
        limiter.Gatekeeper.Tell(new Release(held.LeaseId), probe.Ref);
        await probe.ExpectMsgAsync<Granted>(g => Assert.Equal(2, g.RequestId));
        Assert.Equal((1, 0), await RunningAndWaiting(limiter));
    }

    [Fact]
    public async Task A_request_turned_away_by_the_gate_frees_its_id()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var probe = CreateTestProbe();
        var held = await limiter.AcquireGranted(probe, 1);
        limiter.Gatekeeper.Tell(new Acquire("probe", 2) { WaitTimeout = TimeSpan.Zero }, probe.Ref);
        await probe.ExpectMsgAsync<Rejected>(r => Assert.Equal(RejectionReason.TimedOut, r.Kind));

        limiter.Gatekeeper.Tell(new Release(held.LeaseId), probe.Ref);

        await limiter.AcquireGranted(probe, 2);
    }

    private async Task<(int Running, int Waiting)> RunningAndWaiting(ConcurrencyLimiter limiter)
    {
        var status = await this.StatusOf(limiter);
        return (status.Running, status.Waiting);
    }

    /// <summary>Distinct actors each take a slot and give it back once, then stay alive and idle.</summary>
    private async Task CycleOnce(ConcurrencyLimiter limiter, int callers)
    {
        var done = new TaskCompletionSource[callers];
        for (var i = 0; i < callers; i++)
        {
            done[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var finished = done[i];
            Sys.ActorOf(Props.Create(() => new OneCycle(limiter.Gatekeeper, finished)));
        }

        await Within(Task.WhenAll(done.Select(d => d.Task)));
    }

    private sealed class OneCycle : ReceiveActor
    {
        public OneCycle(IActorRef gatekeeper, TaskCompletionSource done)
        {
            Receive<Granted>(granted =>
            {
                gatekeeper.Tell(new Release(granted.LeaseId));
                done.TrySetResult();
            });
            Receive<Queued>(_ => { });
            Receive<Rejected>(rejected => done.TrySetException(new InvalidOperationException(rejected.Reason)));
            gatekeeper.Tell(new Acquire("cycle", 1));
        }
    }
}
