using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Limiting;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;
using ClockFault = ActorQueue.Tests.Review.LocalSuspectsReviewTests.ClockFault;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;
using FaultyClock = ActorQueue.Tests.Review.RestartActorCallersReviewTests.FaultyClock;

namespace ActorQueue.Tests.Review;

/// <summary>The restarts, status reads and waiting set-up the second review of the restart carry shares.</summary>
public abstract class RestartCarryRound2ReviewBase : ActorQueueTestKit
{
    private protected static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>Restarts a model-API gatekeeper by a clock fault in a settle (a handler nothing catches), asserted.</summary>
    private protected async Task RestartBySettle(IActorRef gatekeeper, LocalSuspectsReviewTests.OnceFailingClock clock)
    {
        var before = FaultyClock.InstanceOf(gatekeeper);
        clock.FailNextSettleRead();
        await EventFilter.Exception<ClockFault>().ExpectOneAsync(() =>
        {
            gatekeeper.Tell(new SettleTokens(new PermitDemand(1, 10), 10), ActorRefs.NoSender);
            return Task.CompletedTask;
        });
        await Poll.UntilAsync(() => FaultyClock.InstanceOf(gatekeeper) is { } now && !ReferenceEquals(now, before), Dilated(TimeSpan.FromSeconds(10)), () => "the gatekeeper restarted");
    }

    private protected async Task<Status> StatusOf(IActorRef gatekeeper)
    {
        var probe = CreateTestProbe();
        gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    /// <summary>A limit of 1 held by <paramref name="holder"/> (request 1); waiting: <paramref name="waiter"/> (request 2, a minute: a deadline, which a restart by a wake needs), then a facade caller (for ever, unless <paramref name="facadeTimeout"/>).</summary>
    /// <param name="limiter">The limiter, of 1.</param>
    /// <param name="holder">Holds its permit.</param>
    /// <param name="waiter">Waits first, with a deadline.</param>
    /// <param name="facadeTimeout">The facade caller's wait timeout: for ever unless a test needs a deadline left after the actor waiter is served.</param>
    private protected async Task<(Granted Held, Task<ConcurrencyLease> Facade)> HeldWithTwoWaiting(ConcurrencyLimiter limiter, Akka.TestKit.TestProbe holder, Akka.TestKit.TestProbe waiter,
                                                                                                   TimeSpan? facadeTimeout = null)
    {
        var held = await limiter.AcquireGranted(holder, 1);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 2) { WaitTimeout = Minute }, waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();
        var facade = limiter.AcquireAsync(permits: 1, waitTimeout: facadeTimeout ?? Timeout.InfiniteTimeSpan).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two wait");
        return (held, facade);
    }

    /// <summary>Restarts the gatekeeper by a clock fault in a wake (a waiter with a deadline must be queued), asserted.</summary>
    private protected Task Restart(IActorRef gatekeeper, FaultyClock clock) =>
        EventFilter.Exception<ClockFault>().ExpectOneAsync(() => clock.RestartGatekeeper(gatekeeper, Dilated(TimeSpan.FromSeconds(10))));
}
