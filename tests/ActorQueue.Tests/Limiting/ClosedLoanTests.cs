using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gatekeeper's pool stays exact when its loan is shut for it: a limiter's dispose closes the loan at once and
/// stops the gatekeeper by message, so the gatekeeper still handles what came before that message with a closed loan;
/// a restart shuts the loan, and the next instance's pool starts anew while facade leases are still held.
/// </summary>
public class ClosedLoanTests : ActorQueueTestKit
{
    [Fact]
    public async Task Permits_lent_and_unclaimed_when_the_loan_closes_go_back_to_the_pool()
    {
        var (gatekeeper, counts, probe) = await LendingGatekeeperAsync(2);
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

    /// <summary>
    /// A restart (a clock fault in the gate's wake, under a waiter with a deadline: the way to restart a gatekeeper
    /// without rates, <see cref="Review.RestartActorCallersReviewTests.FaultyClock"/>) keeps the claimed lease counted;
    /// once the waiter's deadline passes, the lease comes back into the next instance's loan. Before it restarted by a
    /// request that threw, which the gatekeeper has failed alone since 53a9822: the test restarted nothing.
    /// </summary>
    [Fact]
    public async Task A_lease_claimed_before_a_restart_keeps_its_permit_from_the_restarted_gatekeepers_loan()
    {
        var clock = new Review.RestartActorCallersReviewTests.FaultyClock();
        var (gatekeeper, counts, probe) = await LendingGatekeeperAsync(1, clock);
        Assert.True(counts.Loan.TryClaim(1), "a caller claims the one permit");
        gatekeeper.Tell(new GatekeeperProtocol.Acquire("waits, with a deadline", 1) { WaitTimeout = TimeSpan.FromMinutes(1) }, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>();

        await EventFilter.Exception<Review.LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(
            () => clock.RestartGatekeeper(gatekeeper, Dilated(TimeSpan.FromSeconds(10))));
        gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        var status = await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();

        Assert.Equal((1, 1), (status.Running, status.Waiting));
        Assert.Equal(1, counts.Running);
        Assert.False(counts.Loan.TryClaim(1), "max_running is 1 and the lease from before the restart is still held");
        clock.Advance(TimeSpan.FromMinutes(1));
        await probe.ExpectMsgAsync<GatekeeperProtocol.Rejected>(); // the waiter's deadline, carried over
        // The restarted instance lends once nobody waits, at the end of a message: until then a return is refused
        // without effect, so try until the loan is open.
        await Eventually(() => counts.Loan.TryReturn(1), "the lease comes back into the restarted gatekeeper's loan");
        Assert.True(counts.Loan.TryClaim(1), "and is claimed again");
        Assert.False(counts.Loan.TryClaim(1));
    }

    /// <summary>A gatekeeper without rates that has handled a message (it lends from its start) and the probe that asked.</summary>
    private async Task<(IActorRef Gatekeeper, LimiterCounts Counts, Akka.TestKit.TestProbe Probe)> LendingGatekeeperAsync(int maxRunning, TimeProvider? time = null)
    {
        var counts = new LimiterCounts();
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(new GatekeeperSettings(maxRunning, null, null, QueueFullMode.RejectNewcomer, null,
                                                                                  "loan-shut-for-the-gatekeeper", counts, time ?? TimeProvider.System)));
        var probe = CreateTestProbe();
        gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();

        // The status is answered inside its turn, whose rest lends the free permits: wait for that lend.
        await Eventually(() => counts.Loan.Unclaimed == maxRunning, "the gatekeeper lends its free permits after the status");
        return (gatekeeper, counts, probe);
    }
}
