using ActorQueue.Coordination;
using ActorQueue.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review round 40 of a capacity limiter's borrower that retries at once after its wait was cancelled. A facade
/// waiter's cancellation completes the caller's task first and tells the coordinator to withdraw it after
/// (<c>FacadeWaiter.OnCancellationRequested</c>: <c>TryCancel</c>, then <c>WithdrawWaiter</c>), so the caller may
/// resume and send its retry before that withdrawal is sent. The real <see cref="CapacityLimiterCoordinator"/> runs
/// here on the test thread (a TestActorRef) and gets the messages in exactly that order.
/// </summary>
public sealed class BorrowerRetryRound40Tests : ActorQueueTestKit
{
    /// <summary>
    /// A borrower whose wait was cancelled, and who asks again before the coordinator heard of the cancellation, waits
    /// as a new borrower (README: "a cancelled borrower takes nothing and may try again") and gets the token when it
    /// comes back. Failed before: the retry was refused with <see cref="InvalidOperationException"/> ("already holding
    /// (or waiting for)"), because the cancelled waiter still stood in the coordinator's set of waiting borrowers.
    /// </summary>
    [Fact]
    public async Task A_borrower_that_retries_before_its_cancelled_wait_is_withdrawn_waits_again_and_gets_the_token()
    {
        var state = new CapacityState();
        var coordinator = ActorOfAsTestActorRef<CapacityLimiterCoordinator>(CapacityLimiterCoordinator.Props(1, state));
        var holder = new object();
        var borrower = new object();

        var held = new BorrowerWaiter(coordinator, holder, state);
        coordinator.Tell(held, ActorRefs.NoSender);
        await Within(held.WaitAsTaskAsync(CancellationToken.None));

        var cancelled = new BorrowerWaiter(coordinator, borrower, state);
        coordinator.Tell(cancelled, ActorRefs.NoSender);
        Assert.Equal(1, state.Waiting);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        Assert.True(cancelled.TryCancel(cts.Token)); // the caller hears of its cancellation ...

        var retry = new BorrowerWaiter(coordinator, borrower, state); // ... and asks again at once
        coordinator.Tell(retry, ActorRefs.NoSender);
        var retried = retry.WaitAsTaskAsync(CancellationToken.None);
        coordinator.Tell(new WithdrawWaiter(cancelled, cts.Token), ActorRefs.NoSender); // the withdrawal comes after
        Assert.False(retried.IsCompleted, $"the retry is {retried.Status}: {retried.Exception?.InnerException?.Message}");

        Assert.True(state.Holders.TryRemove(holder, out _)); // the holder's release, as ReleaseOnBehalfOf does it
        coordinator.Tell(new CapacityRelease(holder), ActorRefs.NoSender);

        Assert.True(await Within(retried));
        Assert.True(state.Holders.ContainsKey(borrower));
        Assert.Equal(1, state.Borrowed);
        Assert.Equal(0, state.Waiting);
    }
}
