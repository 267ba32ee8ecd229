using ActorQueue.Primitives;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review round 40 of an <see cref="AsyncLock"/> scope (<c>LockAsync</c>) that ends after the lock was disposed inside
/// it, as review h151 settled for the semaphore's scope: the body's own exception is what the caller sees.
/// </summary>
public sealed class LockScopeAfterDisposeRound40Tests : ActorQueueTestKit
{
    /// <summary>
    /// A flow disposes the lock inside its own <c>await using (await lock.LockAsync())</c> region and the body then
    /// fails: the caller sees the body's exception, and the lock ends free.
    /// Failed before: the disposal took the flow's identity out (<c>FlowIdentity.Forget</c>), so the scope's release
    /// found no holder in the flow and threw <see cref="SynchronizationLockException"/> over the body's exception.
    /// </summary>
    [Fact]
    public async Task A_scope_ended_after_its_lock_was_disposed_in_it_keeps_the_bodys_exception()
    {
        var gate = new AsyncLock(Sys);

        var error = await Record.ExceptionAsync(async () =>
        {
            await using (await gate.LockAsync())
            {
                await gate.DisposeAsync();
                throw new InvalidOperationException("the body's own failure");
            }
        });

        Assert.IsType<InvalidOperationException>(error);
        Assert.Equal("the body's own failure", error.Message);
        Assert.False(gate.IsLocked);
    }

    /// <summary>
    /// The scope is the lease: it gives back the level it took even when another flow ends it (the flow-bound
    /// <c>Release</c> still refuses a flow that does not hold), and a second end does nothing.
    /// Failed before: the scope released for whichever flow ended it and threw <see cref="SynchronizationLockException"/>.
    /// </summary>
    [Fact]
    public async Task A_scope_ended_by_another_flow_gives_back_the_level_it_took_once()
    {
        using var gate = new AsyncLock(Sys);
        var scope = await gate.LockAsync();
        Assert.True(gate.IsLocked);
        await Assert.ThrowsAsync<SynchronizationLockException>(() => Within(InAnotherFlow(() =>
        {
            gate.Release();
            return Task.CompletedTask;
        })));

        await Within(InAnotherFlow(async () => await scope.DisposeAsync()));
        await scope.DisposeAsync();

        Assert.False(gate.IsLocked);
        Assert.True(await Within(InAnotherFlow(async () =>
        {
            var taken = await gate.AcquireAsync();
            gate.Release();
            return taken;
        })));
    }
}
