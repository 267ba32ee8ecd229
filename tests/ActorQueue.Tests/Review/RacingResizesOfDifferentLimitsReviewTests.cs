using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: two <c>Resize</c> calls that race and change different limits (IConcurrencyLimiter.Resize: "MaxRunning and
/// MaxQueued show the new values at once"; a null argument keeps that limit). Once both returned, each call's own
/// argument is in force whatever order their messages reach the gatekeeper in: <c>Resize(maxQueued: 3)</c> racing
/// <c>Resize(maxRunning: 5)</c> ends with max_queued 3 and max_running 5, as either serial order would.
/// </summary>
/// <remarks>
/// The steps are <see cref="ConcurrencyLimiter.Resize"/>'s, one call each, in the order two racing callers interleave:
/// the newer call reads the other limit (still the old one) for its publication, the older call numbers and publishes
/// first, and the newer call's <c>Tell</c> overtakes the older one's. Failed on 677d34f, before the fix: the gatekeeper skips the
/// older <see cref="FacadeResize"/> as stale (<c>LimiterCounts.IsStaleResize</c>, since removed) although the newer one never set the
/// limit the older one changes, so that change is lost for good — in the gate and in what the facade shows.
/// </remarks>
public sealed class RacingResizesOfDifferentLimitsReviewTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_racing_resize_of_max_queued_is_not_lost_when_a_newer_resize_of_max_running_arrives_first()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(2, 10);
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(2, 10, "review-racing-resizes", "review-racing-resizes", counts));

        // Caller B, Resize(maxRunning: 5), evaluates `maxQueued ?? MaxQueued` (10) before caller A publishes.
        var bReadMaxQueued = counts.MaxQueued;
        var a = counts.PublishResize(counts.MaxRunning, 3); // caller A: Resize(maxQueued: 3)
        var b = counts.PublishResize(5, bReadMaxQueued);
        Assert.True(b > a);

        // B's Tell overtakes A's.
        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(5, null), b));
        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(null, 3), a));
        var status = await gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)));

        Assert.Equal(5, status.MaxRunning);
        Assert.True(status.MaxQueued == 3, $"the gatekeeper's max_queued is {status.MaxQueued}: Resize(maxQueued: 3) returned and was lost");
        Assert.True(counts.MaxQueued == 3, $"MaxQueued reads {counts.MaxQueued} after both resizes returned and were handled");
    }

    [Fact]
    public async Task A_racing_resize_of_max_running_is_not_lost_when_a_newer_resize_of_max_queued_arrives_first()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(2, 10);
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(2, 10, "review-racing-resizes-2", "review-racing-resizes-2", counts));

        // Caller B, Resize(maxQueued: 7), evaluates `maxRunning ?? MaxRunning` (2) before caller A publishes.
        var bReadMaxRunning = counts.MaxRunning;
        var a = counts.PublishResize(3, counts.MaxQueued); // caller A: Resize(maxRunning: 3)
        counts.Loan.Suspend();
        var b = counts.PublishResize(bReadMaxRunning, 7);

        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(null, 7), b));
        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(3, null), a));
        var status = await gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)));

        Assert.Equal(7, status.MaxQueued);
        Assert.True(status.MaxRunning == 3, $"the gatekeeper's max_running is {status.MaxRunning}: Resize(maxRunning: 3) returned and was lost");
        Assert.True(counts.MaxRunning == 3, $"MaxRunning reads {counts.MaxRunning} after both resizes returned and were handled");
    }
}
