using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A limiter's dispose closes its gatekeeper's loan at once and stops the gatekeeper by message, so the gatekeeper
/// still handles what came before that message with a closed loan; its pool must stay exact meanwhile.
/// </summary>
public class ClosedLoanTests : ActorQueueTestKit
{
    [Fact]
    public async Task Permits_lent_and_unclaimed_when_the_loan_closes_go_back_to_the_pool()
    {
        var counts = new LimiterCounts();
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(2, null, null, "closed-loan", counts));
        var probe = CreateTestProbe();
        gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        Assert.Equal(2, counts.Loan.Unclaimed);
        Assert.True(counts.Loan.TryClaim(1), "a caller claims one of the two lent permits");

        // As ConcurrencyLimiter.Dispose does before its stop message reaches the gatekeeper.
        counts.Loan.Close();

        gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        var status = await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        Assert.Equal((1, 0), (status.Running, status.Waiting));

        gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 1), probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(granted => Assert.Equal(1, granted.RequestId));
        Assert.Equal(2, counts.Running);
    }
}
