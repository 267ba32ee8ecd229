using ActorQueue.Primitives;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Primitives;

public class AsyncLockTests : ActorQueueTestKit
{
    [Fact]
    public async Task Lock_keeps_a_shared_counter_consistent_across_five_tasks()
    {
        using var @lock = new AsyncLock(Sys);
        var counter = 0;
        var inside = 0;
        var maxInside = 0;

        async Task Increment()
        {
            for (var i = 0; i < 20; i++)
            {
                await using (await @lock.LockAsync())
                {
                    maxInside = Math.Max(maxInside, Interlocked.Increment(ref inside));
                    var read = counter;
                    await Task.Yield();
                    counter = read + 1;
                    Interlocked.Decrement(ref inside);
                }
            }
        }

        await Within(Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Task.Run(Increment))));

        Assert.Equal(100, counter);
        Assert.Equal(1, maxInside);
        await Eventually(() => !@lock.IsLocked, "the last release reached the coordinator");
    }

    [Fact]
    public async Task The_holding_flow_reenters_and_must_release_as_many_times()
    {
        using var @lock = new AsyncLock(Sys);
        Assert.True(await @lock.AcquireAsync());
        Assert.True(await Within(@lock.AcquireAsync()));

        var other = InAnotherFlow(() => @lock.AcquireAsync());
        await Eventually(() => @lock.WaitingCount == 1, "the other flow waits");
        @lock.Release();
        Assert.True(@lock.IsLocked);
        Assert.False(other.IsCompleted, "one release of two leaves the lock held");
        @lock.Release();

        Assert.True(await Within(other));
        Assert.Throws<SynchronizationLockException>(@lock.Release);
    }

    [Fact]
    public async Task A_release_by_a_flow_that_does_not_hold_the_lock_throws()
    {
        using var @lock = new AsyncLock(Sys);
        Assert.Throws<SynchronizationLockException>(@lock.Release);
        await @lock.AcquireAsync();

        var ex = await Assert.ThrowsAsync<SynchronizationLockException>(() => InAnotherFlow(() =>
        {
            @lock.Release();
            return Task.CompletedTask;
        }));

        Assert.Contains("not held by the calling flow", ex.Message);
        Assert.True(@lock.IsLocked);
        @lock.Release();
        Assert.Throws<SynchronizationLockException>(@lock.Release);
    }

    [Fact]
    public async Task Waiters_get_the_lock_in_arrival_order_the_first_straight_from_the_release()
    {
        using var @lock = new AsyncLock(Sys);
        await @lock.AcquireAsync();
        var order = new List<int>();
        var waiters = new List<Task>();
        var firstMayRelease = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        for (var i = 0; i < 5; i++)
        {
            var index = i;
            waiters.Add(InAnotherFlow(async () =>
            {
                await @lock.AcquireAsync();
                lock (order)
                {
                    order.Add(index);
                }

                if (index == 0)
                {
                    await firstMayRelease.Task;
                }

                @lock.Release();
            }));
            await Eventually(() => @lock.WaitingCount == index + 1 && @lock.State.IsHeadPublished, $"waiter {index} is queued, the first published");
        }

        @lock.Release(); // hands the lock to the published first waiter: no message, so it holds before this returns
        Assert.True(@lock.IsLocked);
        Assert.NotNull(@lock.State.Owner);
        Assert.Equal(4, @lock.State.Announced); // the release counted the first out itself
        firstMayRelease.SetResult();

        await Within(Task.WhenAll(waiters));
        Assert.Equal([0, 1, 2, 3, 4], order);
        await Eventually(() => !@lock.IsLocked && @lock.State.Announced == 0, "the last waiter freed the lock");
    }

    [Fact]
    public async Task A_cancelled_waiter_takes_nothing_and_the_lock_stays_usable()
    {
        using var @lock = new AsyncLock(Sys);
        await @lock.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var cancelled = InAnotherFlow(() => @lock.AcquireAsync(cts.Token));
        await Eventually(() => @lock.WaitingCount == 1, "the first waiter is queued");
        var next = InAnotherFlow(() => @lock.AcquireAsync());
        await Eventually(() => @lock.WaitingCount == 2, "the second waiter is queued");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        @lock.Release();

        Assert.True(await Within(next));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => @lock.AcquireAsync(cts.Token));
    }

    [Fact]
    public async Task A_task_forked_inside_the_held_region_shares_the_holders_identity()
    {
        using var @lock = new AsyncLock(Sys);
        await @lock.AcquireAsync();

        // The documented caveat: Task.Run copies the holder's flow, so the child counts as the holder.
        var forked = Task.Run(() => @lock.AcquireAsync());
        Assert.True(await Within(forked));
        @lock.Release();

        Assert.True(@lock.IsLocked);
        @lock.Release();
        await Eventually(() => !@lock.IsLocked, "both levels released");
    }

    [Fact]
    public async Task An_actor_holds_the_lock_and_releases_it_by_stopping()
    {
        using var @lock = new AsyncLock(Sys);
        var actor = CreateTestProbe();
        @lock.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        @lock.Coordinator.Tell(new Acquire(2), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(2));
        var waiting = @lock.AcquireAsync();

        Sys.Stop(actor.Ref);

        Assert.True(await Within(waiting));
    }

    [Fact]
    public async Task An_actor_that_does_not_hold_the_lock_is_refused_on_release()
    {
        using var @lock = new AsyncLock(Sys);
        var actor = CreateTestProbe();

        @lock.Coordinator.Tell(new Release(3), actor.Ref);

        var refused = await actor.ExpectMsgAsync<Refused>();
        Assert.Equal(3, refused.RequestId);
    }

    [Fact]
    public async Task Disposing_fails_waiters_and_later_calls()
    {
        var @lock = new AsyncLock(Sys);
        await @lock.AcquireAsync();
        var waiting = InAnotherFlow(() => @lock.AcquireAsync());
        await Eventually(() => @lock.WaitingCount == 1, "a waiter is queued");

        await @lock.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(waiting));
        Assert.Throws<ObjectDisposedException>(() => { _ = @lock.AcquireAsync(); });
    }

    [Fact]
    public async Task Flows_and_actors_share_one_lock_in_arrival_order_and_a_free_lock_costs_the_coordinator_nothing()
    {
        using var @lock = new AsyncLock(Sys);
        Assert.True(await @lock.AcquireAsync()); // free and nobody waits: taken without a message
        Assert.Equal(0, @lock.State.Waiting);
        var actor = CreateTestProbe();
        @lock.Coordinator.Tell(new Acquire(1), actor.Ref);
        await Eventually(() => @lock.WaitingCount == 1, "the actor waits behind the flow");
        var flow = InAnotherFlow(() => @lock.AcquireAsync());
        await Eventually(() => @lock.WaitingCount == 2, "a second flow waits behind the actor");

        @lock.Release(); // someone waits: the coordinator frees the lock and hands it on
        await actor.ExpectMsgAsync(new Acquired(1));
        Assert.False(flow.IsCompleted, "the flow waits for the actor ahead of it");
        var newcomer = InAnotherFlow(() => @lock.AcquireAsync());
        @lock.Coordinator.Tell(new Release(2), actor.Ref);

        Assert.True(await Within(flow));
        Assert.False(newcomer.IsCompleted, "a newcomer never passes a waiter");
    }
}
