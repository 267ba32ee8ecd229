using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The rate loan across the gatekeeper's life: nothing is lent once the limiter is disposed, and lending resumes after a restart.</summary>
public sealed class RateLoanLifecycleTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter() =>
        new(new ModelApiLimiterOptions(4, 500, 1000, TimeSpan.FromMinutes(1)) { TimeProvider = _clock, MaxQueued = 0 }, "model-api-lifecycle", system: Sys);

    [Fact]
    public async Task The_adapter_grants_nothing_once_the_limiter_is_disposed()
    {
        var limiter = Limiter();
        var adapter = await ModelApiLoanTests.Lending(limiter);

        limiter.Dispose();

        // The gatekeeper may not have handled the dispose yet: the loan it lent is closed by the limiter itself.
        Assert.False(limiter.Loan.IsOpen);
        Assert.Throws<ObjectDisposedException>(() => adapter.AttemptAcquire(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await adapter.AcquireAsync(1));
    }

    [Fact]
    public async Task A_gatekeeper_restarted_by_a_failing_message_lends_again()
    {
        using var limiter = Limiter();
        var adapter = await ModelApiLoanTests.Lending(limiter);

        limiter.Gatekeeper.Tell(new FailingRequest(limiter.Gatekeeper), ActorRefs.NoSender);
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<Status>();

        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the restarted gatekeeper lends again");
        using var lease = adapter.AttemptAcquire(1);
        Assert.True(lease.IsAcquired);
    }

    /// <summary>A request whose demand cannot be read: the gatekeeper's handler throws, and its supervisor restarts it.</summary>
    private sealed class FailingRequest(IActorRef gatekeeper) : AcquireRequest("restart-test", gatekeeper, signalQueued: false)
    {
        public override PermitDemand Demand => throw new InvalidOperationException("the gatekeeper fails inside a message (test)");
    }
}
