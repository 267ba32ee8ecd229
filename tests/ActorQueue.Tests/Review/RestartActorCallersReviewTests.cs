using System.Diagnostics;
using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Limiting;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using ClockFault = ActorQueue.Tests.Review.LocalSuspectsReviewTests.ClockFault;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of a local gatekeeper's restart (Akka restarts it when a fault escapes a handler, e.g. its clock's) for its
/// <em>actor</em> callers (<see cref="GatekeeperProtocol"/>): the facade callers it had queued were carried over to the
/// next instance, with what was left of their waits, and the facade leases held stayed counted; the actor callers' books
/// (who waits, who holds, death watch) were forgotten — a queued actor was rejected as <see cref="RejectionReason.Disposed"/>
/// on a limiter that ran on, and an actor's lease held across the restart was no longer counted (the limit was exceeded).
/// And when the next instance could not be made (its constructor threw), nothing answered the callers carried over.
/// <list type="bullet">
/// <item><see cref="A_queued_actor_caller_keeps_its_place_and_what_was_left_of_its_wait_when_a_plain_gatekeeper_restarts"/>:
/// FAILED before ("the restarted gatekeeper has 1 of the 3 waiters; running 1", the two actors rejected as disposed, the
/// facade caller behind them granted the holder's permit at once).</item>
/// <item><see cref="An_actor_lease_held_across_a_restart_is_counted_released_and_freed_by_death_watch"/>: FAILED before
/// ("Expected (2, 1), Actual (0, 0)": both actors' leases no longer counted, the waiter rejected as disposed).</item>
/// <item><see cref="A_model_api_gatekeepers_actor_callers_outlive_its_restart"/>: FAILED before ("after the restart:
/// running 1, waiting 0": the actor's lease no longer counted, the waiter rejected as disposed).</item>
/// <item><see cref="Callers_carried_over_are_answered_when_the_next_instance_cannot_be_made"/> and
/// <see cref="A_model_api_gatekeepers_carried_callers_are_answered_when_its_next_instance_cannot_be_made"/>: FAILED before
/// (the carried facade caller was never answered: TimeoutException after the test's 30 s).</item>
/// </list>
/// Mutants killed: the actors' held permits not carried (tests 1–3), no lease-number base after a restart (1–3: a grant
/// reused a held lease's number), the carried actor's whole timeout kept (1), the second <c>PostStop</c> not taken for a
/// stop (4, 5).
/// </summary>
public sealed class RestartActorCallersReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A limit of 1 held by an actor; waiting: an actor (for ever), an actor (20 s, of which 15 s pass), a facade caller.
    /// A clock fault escapes a wake and Akka restarts the gatekeeper. The next instance has the three waiters in their
    /// order and still counts the actor's permit (a facade call that will not wait is refused: the limit holds); the second
    /// times out 5 s later (what was left of its wait); the holder's release goes to the first actor, with a lease number
    /// of its own; its release, to the facade caller. Mutants killed: books not carried (the actors rejected as disposed),
    /// the actor's held permits not counted (the facade caller granted at the restart), time left not carried (the second
    /// never timed out), carried in reverse (the facade caller granted first), the time left told as its timeout ("Waited
    /// 5000 ms", as before 2026-12-05's evening session).
    /// </summary>
    [Fact]
    public async Task A_queued_actor_caller_keeps_its_place_and_what_was_left_of_its_wait_when_a_plain_gatekeeper_restarts()
    {
        var clock = new FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, "review-restart-actors", system: Sys);
        var holder = CreateTestProbe();
        var first = CreateTestProbe();
        var second = CreateTestProbe();
        var held = await limiter.AcquireGranted(holder, 1);
        limiter.Gatekeeper.Tell(new Acquire("first", 2), first.Ref);
        await first.ExpectMsgAsync<Queued>();
        limiter.Gatekeeper.Tell(new Acquire("second", 3) { WaitTimeout = TimeSpan.FromSeconds(20) }, second.Ref);
        await second.ExpectMsgAsync<Queued>();
        var facade = limiter.AcquireAsync(permits: 1, waitTimeout: Timeout.InfiniteTimeSpan, source: "facade").AsTask();
        await Eventually(() => limiter.WaitingCount == 3, "three wait");
        clock.Advance(TimeSpan.FromSeconds(15));

        await RestartByClockFault(limiter.Gatekeeper, clock);

        var restarted = await this.StatusOf(limiter);
        Assert.True((restarted.Running, restarted.Waiting) == (1, 3),
            $"the restarted gatekeeper has {restarted.Waiting} of the 3 waiters; running {restarted.Running}");
        Assert.False(facade.IsCompleted, "the facade caller was granted the actor's permit at the restart");
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask()));

        clock.Advance(TimeSpan.FromSeconds(5));
        var timedOut = await second.ExpectMsgAsync<Rejected>(); // not 20 s more
        Assert.Equal((3, RejectionReason.TimedOut), (timedOut.RequestId, timedOut.Kind));
        Assert.StartsWith("Waited 20000 ms ", timedOut.Reason); // the wait it was allowed, not the 5 s it had left at the restart

        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);
        var granted = await first.ExpectMsgAsync<Granted>();
        Assert.Equal(2, granted.RequestId);
        Assert.NotEqual(held.LeaseId, granted.LeaseId);
        Assert.False(facade.IsCompleted, "the facade caller passed the actor queued before it");

        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), first.Ref);
        (await Within(facade)).Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing leaked");
        await first.ExpectNoMsgAsync(TimeSpan.Zero);
    }

    /// <summary>
    /// Two actors hold a limit of 2 and a third waits when the gatekeeper restarts. Both leases stay counted (a facade call
    /// that will not wait is refused); one holder's release after the restart is taken and grants the waiter a lease whose
    /// number is neither holder's (the next instance's gate numbers its leases from 1 again: without a base of its own the
    /// waiter got the first holder's number, and the books' table threw on it); the other holder's stop frees its lease
    /// (death watch, installed before the restart); the waiter's release empties the limiter.
    /// </summary>
    [Fact]
    public async Task An_actor_lease_held_across_a_restart_is_counted_released_and_freed_by_death_watch()
    {
        var clock = new FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(2) { TimeProvider = clock }, "review-restart-actor-leases", system: Sys);
        var firstHolder = CreateTestProbe();
        var secondHolder = CreateTestProbe();
        var waiter = CreateTestProbe();
        var firstLease = await limiter.AcquireGranted(firstHolder, 1);
        var secondLease = await limiter.AcquireGranted(secondHolder, 1);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 7) { WaitTimeout = Minute }, waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();

        await RestartByClockFault(limiter.Gatekeeper, clock);

        Assert.Equal((2, 1), ((await this.StatusOf(limiter)).Running, limiter.WaitingCount));
        await waiter.ExpectNoMsgAsync(TimeSpan.Zero);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask()));

        limiter.Gatekeeper.Tell(new Release(secondLease.LeaseId), secondHolder.Ref);
        var granted = await waiter.ExpectMsgAsync<Granted>();
        Assert.Equal(7, granted.RequestId);
        Assert.DoesNotContain(granted.LeaseId, new[] { firstLease.LeaseId, secondLease.LeaseId });
        Assert.Equal(2, (await this.StatusOf(limiter)).Running);

        Sys.Stop(firstHolder.Ref);
        await Eventually(() => limiter.RunningCount == 1, "the stopped holder's lease was freed");

        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), waiter.Ref);
        await Eventually(() => limiter.RunningCount == 0, "the waiter's lease came back");
        using var a = await Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask());
        using var b = await Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask());
    }

    /// <summary>
    /// A model-API limiter (2 concurrent) held by an actor and a facade caller, an actor waiting, restarted by a clock fault
    /// in the facade caller's settle. The waiter keeps waiting; the holder's lease is still its own (its settle is taken,
    /// once); the facade lease's return grants the waiter, after which both slots are held by actors (a call that will not
    /// wait is refused); the holder's release frees a slot.
    /// </summary>
    [Fact]
    public async Task A_model_api_gatekeepers_actor_callers_outlive_its_restart()
    {
        var clock = new LocalSuspectsReviewTests.OnceFailingClock();
        var options = new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 500, tokensPerPeriod: 100_000, Minute) { TimeProvider = clock };
        using var limiter = new ModelApiLimiter(options, "review-rate-restart-actors", system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("holder", 1) { Tokens = 10 }, holder.Ref);
        var held = await holder.ExpectMsgAsync<Granted>();
        var facadeHolder = await Within(limiter.AcquireAsync(10, source: "facade holder").AsTask());
        limiter.Gatekeeper.Tell(new Acquire("waiter", 2) { Tokens = 10 }, waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();

        clock.FailNextSettleRead();
        await EventFilter.Exception<ClockFault>().ExpectOneAsync(() =>
        {
            facadeHolder.Settle(5); // its handler reads the clock outside any catch: the actor is restarted
            return Task.CompletedTask;
        });

        var restarted = await StatusOf(limiter);
        Assert.True((restarted.Running, restarted.Waiting) == (2, 1), $"after the restart: running {restarted.Running}, waiting {restarted.Waiting}");
        await waiter.ExpectNoMsgAsync(TimeSpan.Zero);
        limiter.Gatekeeper.Tell(new Settle(held.LeaseId, 5), holder.Ref);
        Assert.Equal(new Settled(held.LeaseId, 5), await holder.ExpectMsgAsync<Settled>());

        facadeHolder.Dispose();
        var granted = await waiter.ExpectMsgAsync<Granted>();
        Assert.NotEqual(held.LeaseId, granted.LeaseId);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(10, waitTimeout: TimeSpan.Zero).AsTask()));

        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);
        (await Within(limiter.AcquireAsync(10, waitTimeout: TimeSpan.Zero).AsTask())).Dispose();
    }

    /// <summary>
    /// A gatekeeper whose clock goes down for good: a wake's read throws (Akka restarts it), and its next instance, which
    /// reads the clock as it is made, cannot be made (Akka then stops it; the old instance's <c>PostStop</c> runs a second
    /// time). The callers carried over — an actor and a facade caller waiting, and a facade caller that arrived meanwhile —
    /// are answered: failed as disposed, naming the failed restart, rather than left waiting for ever.
    /// </summary>
    [Fact]
    public async Task Callers_carried_over_are_answered_when_the_next_instance_cannot_be_made()
    {
        var clock = new FaultyClock();
        // No start stamp: each instance reads the clock as it is made, so one made while the clock is down throws.
        var settings = new GatekeeperSettings(1, null, null, QueueFullMode.RejectNewcomer, "review-restart-dies", "review-restart-dies", new LimiterCounts(), clock);
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(settings));
        Watch(gatekeeper);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        gatekeeper.Tell(new Acquire("holder", 1), holder.Ref);
        await holder.ExpectMsgAsync<Granted>();
        gatekeeper.Tell(new Acquire("waiter", 2) { WaitTimeout = Minute }, waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();
        var facade = new AcquireRequest("facade", gatekeeper, signalQueued: false);
        gatekeeper.Tell(facade, ActorRefs.NoSender);
        var status = await gatekeeper.Ask<Status>(GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)));
        Assert.Equal(2, status.Waiting);

        clock.Down = true;
        gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
        await ExpectTerminatedAsync(gatekeeper);

        var failure = await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(facade.Completion.AsTask()));
        Assert.Contains("restart", failure.Message, StringComparison.OrdinalIgnoreCase);
        var rejected = await waiter.ExpectMsgAsync<Rejected>();
        Assert.Equal(RejectionReason.Disposed, rejected.Kind);
        Assert.Contains("restart", rejected.Reason, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The same for a model-API gatekeeper (no turn: its carried callers wait in <c>LimiterCounts.CarriedOver</c> alone),
    /// restarted by a clock fault in a settle. Its next instance is made without reading the clock (it goes on with the
    /// rates and their gate time), so the fault is injected: a limit it cannot be made with (a negative queue bound, which
    /// its gate's constructor refuses). Both waiters, an actor and a facade caller, are answered, and the actor stops.
    /// </summary>
    [Fact]
    public async Task A_model_api_gatekeepers_carried_callers_are_answered_when_its_next_instance_cannot_be_made()
    {
        var clock = new LocalSuspectsReviewTests.OnceFailingClock();
        var counts = new LimiterCounts();
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 500, tokensPerPeriod: 100_000, Minute) { TimeProvider = clock };
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(RateGatekeeper.Settings(options, "review-rate-restart-dies", "review-rate-restart-dies", counts)));
        Watch(gatekeeper);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        gatekeeper.Tell(new Acquire("holder", 1) { Tokens = 10 }, holder.Ref);
        await holder.ExpectMsgAsync<Granted>();
        gatekeeper.Tell(new Acquire("waiter", 2) { Tokens = 10 }, waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();
        var facade = new AcquireRequest("facade", gatekeeper, signalQueued: false);
        gatekeeper.Tell(facade, ActorRefs.NoSender);
        Assert.Equal(2, (await gatekeeper.Ask<Status>(GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)))).Waiting);

        counts.PublishApplied(1, -1); // the next instance's constructor throws
        clock.FailNextSettleRead();
        gatekeeper.Tell(new SettleTokens(new PermitDemand(1, 10), 5), ActorRefs.NoSender);
        await ExpectTerminatedAsync(gatekeeper);

        var failure = await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(facade.Completion.AsTask()));
        Assert.Contains("restart", failure.Message, StringComparison.OrdinalIgnoreCase);
        var rejected = await waiter.ExpectMsgAsync<Rejected>();
        Assert.Equal((2, RejectionReason.Disposed), (rejected.RequestId, rejected.Kind));
    }

    /// <summary>Arms <paramref name="clock"/> to throw in the gate's next wake, and sends a wake: nothing catches that read, so Akka restarts the gatekeeper (asserted).</summary>
    private Task RestartByClockFault(IActorRef gatekeeper, FaultyClock clock) =>
        EventFilter.Exception<ClockFault>().ExpectOneAsync(() => clock.RestartGatekeeper(gatekeeper, Dilated(TimeSpan.FromSeconds(10))));

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    /// <summary>A fake clock that throws once in a gate's wake when armed, or at every read while it is down (a plain gatekeeper's wake is a handler nothing catches, and reads the clock while a waiter has a deadline: the way to restart one).</summary>
    internal sealed class FaultyClock : FakeTimeProvider
    {
        private int _failNextWake;

        /// <summary>Every read throws.</summary>
        public volatile bool Down;

        public void FailNextWakeRead() => Volatile.Write(ref _failNextWake, 1);

        /// <summary>Whether the fault <see cref="FailNextWakeRead"/> armed has been thrown (in a gate's wake).</summary>
        public bool WakeFaultThrown => Volatile.Read(ref _failNextWake) == 0;

        /// <summary>The actor instance behind a local actor reference now (Akka's internal <c>ActorCell.Actor</c>): a restart replaces it (<c>null</c> while none is made, or once stopped).</summary>
        public static object? InstanceOf(IActorRef actor) =>
            ((ActorRefWithCell)actor).Underlying is ActorCell cell
                ? typeof(ActorCell).GetProperty("Actor", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(cell)
                : null;

        /// <summary>
        /// Restarts a gatekeeper without rates whose limit runs on this clock — the way for tests to restart one: a request
        /// that throws no longer does (the gatekeeper fails it alone since 53a9822) — and asserts that it did: the armed
        /// fault is thrown in the wake sent, and Akka makes the actor's next instance. Its gate's wake reads the clock only
        /// while a waiter has a deadline: the test queues one first. Akka's log of the fault is the test's to expect.
        /// </summary>
        public async Task RestartGatekeeper(IActorRef gatekeeper, TimeSpan patience)
        {
            var before = InstanceOf(gatekeeper);
            Assert.NotNull(before);
            FailNextWakeRead();
            gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
            await AssertRestarted(gatekeeper, before, patience);
        }

        /// <summary>Waits until the armed wake fault was thrown and <paramref name="gatekeeper"/> is no longer the instance <paramref name="before"/> (a restart), failing after <paramref name="patience"/>.</summary>
        public async Task AssertRestarted(IActorRef gatekeeper, object? before, TimeSpan patience)
        {
            await Poll.UntilAsync(
                () => WakeFaultThrown && InstanceOf(gatekeeper) is { } now && !ReferenceEquals(now, before),
                patience,
                () => $"the gatekeeper restarted (the wake fault thrown: {WakeFaultThrown}, which needs a waiter with a deadline; its instance {(ReferenceEquals(InstanceOf(gatekeeper), before) ? "the same" : "none")})");
        }

        public override long GetTimestamp()
        {
            if (Down
                || (Volatile.Read(ref _failNextWake) == 1
                    && new StackTrace().GetFrames().Any(frame => frame.GetMethod() is { Name: nameof(PermitGate.Wake) } method && method.DeclaringType == typeof(PermitGate))
                    && Interlocked.Exchange(ref _failNextWake, 0) == 1))
            {
                throw new ClockFault();
            }

            return base.GetTimestamp();
        }
    }
}
