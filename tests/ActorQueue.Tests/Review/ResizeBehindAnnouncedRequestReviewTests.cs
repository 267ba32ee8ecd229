using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 0d14ee8: <c>Resize</c> runs in the gatekeeper's turn "so no request made after this call returned is
/// served on the old limits", but while a request announced by message is on its way (<c>Loan.HasAnnounced</c>: sent
/// before the turn opened) the resize goes by message too. Once the gatekeeper has handled that request, the next
/// caller no longer sees anything announced and runs its request in the turn, ahead of the resize still in the
/// mailbox: it is served on the old limit although its call began after <c>Resize</c> returned (and <c>MaxRunning</c>
/// already said the new one).
/// <list type="bullet">
/// <item><see cref="A_request_made_after_a_shrink_returned_is_not_served_on_the_old_limit_when_the_resize_went_by_message"/>
/// FAILS on main 0d14ee8, every run: the late caller is granted a second permit with <c>MaxRunning</c> 1. The test
/// keeps the gatekeeper from starting (a one-thread coordinator dispatcher, busy) so the first request is announced,
/// and holds the gatekeeper inside that request's grant (<see cref="ActorHold"/>) while the late caller comes.</item>
/// </list>
/// </summary>
public sealed class ResizeBehindAnnouncedRequestReviewTests : ActorQueueTestKit
{
    private const string Name = "review-resize-announced";

    [Fact]
    public async Task A_request_made_after_a_shrink_returned_is_not_served_on_the_old_limit_when_the_resize_went_by_message()
    {
        using var coordinator = new HeldCoordinator();
        var system = coordinator.System;
        using var hold = new ActorHold(Name);

        await using var limiter = new ConcurrencyLimiter(2, name: Name, system: system); // its start waits for the thread
        // A limiter lends from its construction (FreshLoanReviewTests): a resize that changes nothing suspends that loan
        // and goes by message, so the first request, which can no longer claim, is announced and sent, as before.
        limiter.Resize(maxRunning: 2);
        var first = limiter.AcquireAsync("announced before the turn opened").AsTask();
        limiter.Resize(maxRunning: 1); // by message: a request is on its way
        Assert.Equal(1, limiter.MaxRunning);
        hold.Arm(); // the first grant's running count holds the gatekeeper's thread
        coordinator.LetGo();
        hold.WaitHeld("the first request's grant");

        var late = limiter.AcquireAsync("after the shrink returned").AsTask();
        hold.Release();
        using var firstLease = await Within(first);
        var status = await limiter.Gatekeeper.Ask<GatekeeperProtocol.Status>(GetStatus.Instance, TimeSpan.FromSeconds(20));

        Assert.Equal(1, status.MaxRunning);
        Assert.False(late.IsCompleted, $"served on the old limit: running {status.Running} of {status.MaxRunning}");
        Assert.Equal(1, status.Running);
        firstLease.Dispose();
        (await Within(late)).Dispose();
    }
}
