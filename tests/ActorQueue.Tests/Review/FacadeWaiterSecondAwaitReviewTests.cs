using System.Threading.Tasks.Sources;
using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of d7c1ce0 (FacadeWaiter written out instead of a ManualResetValueTaskSourceCore): a second, illegal
/// OnCompleted must fail by itself and leave the first awaiter alone, as the core does (it writes the state only when
/// the continuation slot is still empty). The hand-written OnCompleted writes <c>_continuationState</c> before it
/// learns the slot is taken, so the first awaiter's continuation later runs with the second awaiter's state.
/// Fixed in 830f820: state and contexts are written only into an empty slot.
/// </summary>
public class FacadeWaiterSecondAwaitReviewTests
{
    [Fact]
    public async Task A_rejected_second_OnCompleted_does_not_change_the_state_the_first_continuation_gets()
    {
        var waiter = new FacadeWaiterTests.LeaseWaiter();
        var received = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        waiter.OnCompleted(state => received.TrySetResult(state), "first", 0, ValueTaskSourceOnCompletedFlags.None);

        Assert.Throws<InvalidOperationException>(() =>
            waiter.OnCompleted(_ => { }, "second", 0, ValueTaskSourceOnCompletedFlags.None));
        Assert.True(waiter.TryGrant(new PermitGrant(7, PermitDemand.One, default, Waited: true)));

        Assert.Equal("first", await received.Task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_first_AsTask_still_completes_with_the_grant_after_a_second_AsTask_was_refused()
    {
        // ValueTask misuse (two AsTask calls) must not cost the first task its grant: with the core the second call
        // throws and the first completes; here the first stays pending for ever and the lease goes to the orphan task.
        var waiter = new FacadeWaiterTests.LeaseWaiter();
        var completion = waiter.Completion;
        var first = completion.AsTask();
        Assert.Throws<InvalidOperationException>(() => { _ = completion.AsTask(); });

        Assert.True(waiter.TryGrant(new PermitGrant(7, PermitDemand.One, default, Waited: true)));

        Assert.Equal(7, await first.WaitAsync(TimeSpan.FromSeconds(30))); // on the defect: never completed, the grant went to the refused task
    }
}
