using ActorQueue.Primitives;

namespace ActorQueue.Tests.Review;

/// <summary>Review of f02ae64 (a flow keeps its identity while any acquire of its own is unanswered).</summary>
public sealed class FlowTokenReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// FINDING. A task that a flow starts while its own lock acquire is still waiting — outside any held region —
    /// shares the flow's identity and, once the flow has left its region, the flow re-enters the lock while that task
    /// holds it: two flows inside the lock at once.
    /// <para>What: <c>FlowIdentity.ForAcquire</c> now reuses the flow's token while it <c>IsAsking</c>, for any
    /// unanswered waiter, not only a holder's reentry. The started task inherits the token (the flow's
    /// <c>AsyncLocal</c> was set by <c>ForAcquire</c> before the wait), its <c>ForAcquire</c> finds the token asking
    /// (the flow's own waiter) and acquires with it instead of a fresh one. The flow is granted first, releases its
    /// last level — <c>Forget</c> keeps the token because the task's waiter is still unanswered — and hands the lock
    /// to the task, which now holds it as that same token. The flow, outside its region, still carries the token:
    /// its next <c>AcquireAsync</c> is a "reentry" (<c>IsHeldBy</c>) that the coordinator grants at once
    /// (<c>TryReenter</c>), and its <c>Release</c> would release the task's hold. Before f02ae64 the task's
    /// <c>ForAcquire</c> saw no hold and took a fresh token, and the flow's last release forgot its token (only
    /// reentries in flight kept it), so this test passed. AsyncLock's remarks limit the caveat to "a task started
    /// inside the held region"; this task was not.</para>
    /// <para>Repro: another flow holds the lock; this flow calls <c>AcquireAsync</c> (waits), then starts a task with
    /// <c>Task.Run</c> that acquires too (queues behind it); the other flow releases; this flow gets the lock, releases
    /// it, the task gets it; this flow calls <c>AcquireAsync</c> again.</para>
    /// <para>Expected: the second acquire waits until the task releases. Actual: it completes at once (failed 8 of 8 runs; with f02ae64 reverted the test passed 3 of 3).</para>
    /// <para>Mended: a lock's waiter keeps its flow's identity only when it is a reentry (sent while the token held the
    /// lock); a flow that merely waits lends nothing to the tasks it starts.</para>
    /// <para>Location: src/Primitives/Coordination/CoordinatorHandle.cs, <c>FlowIdentity.ForAcquire</c> (reuse on
    /// <c>IsAsking</c>) together with <c>Forget</c>; src/Primitives/AsyncLock.cs <c>AcquireAsync</c>/<c>Release</c>.</para>
    /// <para>Suggested fix: for the lock, keep (and reuse) a token only for the asks that need it — waiters made while
    /// the token held the lock (reentries), counted until answered (e.g. a separate "reentries unanswered" count on
    /// <c>FlowToken</c>, raised in <c>AcquireAsync</c> when <c>reentry</c> is true and lowered in <c>OnAnswered</c>),
    /// so a flow that merely waits does not lend its identity to the tasks it starts; the capacity limiter can keep
    /// counting every ask (its second acquire must meet the "already waits" check, as before).</para>
    /// </summary>
    [Fact]
    public async Task A_task_started_while_the_flow_waits_for_the_lock_does_not_share_its_hold()
    {
        using var gate = new AsyncLock(Sys);
        var otherHolds = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var otherMayRelease = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var other = InAnotherFlow(async () =>
        {
            await gate.AcquireAsync();
            otherHolds.SetResult();
            await otherMayRelease.Task;
            gate.Release();
        });
        await Within(otherHolds.Task);

        // This flow waits for the lock ...
        var mine = gate.AcquireAsync();
        Assert.False(mine.IsCompleted);

        // ... and meanwhile starts a task that wants the lock too: started outside any held region.
        var helperHolds = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var helperMayRelease = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var helper = Task.Run(async () =>
        {
            await gate.AcquireAsync();
            helperHolds.SetResult();
            await helperMayRelease.Task;
            gate.Release();
        });
        await Eventually(() => gate.State.Announced == 2, "this flow and the task both wait");

        otherMayRelease.SetResult();
        await Within(other);
        Assert.True(await Within(mine)); // this flow's turn: it holds the lock
        gate.Release();                  // ... and leaves its region: the task's turn
        await Within(helperHolds.Task);

        // The task holds the lock: this flow, which holds nothing now, must wait for it.
        var again = gate.AcquireAsync();
        await Eventually(() => again.IsCompleted || gate.WaitingCount == 1, "the coordinator has handled this flow's acquire");
        var enteredWhileTaskHeld = again.IsCompleted;

        helperMayRelease.SetResult();
        await Within(helper).ContinueWith(_ => { }); // its Release may fail if this flow released for it
        Assert.False(enteredWhileTaskHeld, "this flow acquired the lock while the task it started (outside its region) held it");
        await Within(again);
        gate.Release();
    }
}
