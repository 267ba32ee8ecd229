using ActorQueue.Primitives;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Primitives;

public class AsyncSemaphoreTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_semaphore_of_two_caps_concurrency_at_two()
    {
        using var semaphore = new AsyncSemaphore(2, Sys);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var maxInside = 0;

        var tasks = Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            await using (await semaphore.LockAsync())
            {
                maxInside = Math.Max(maxInside, Interlocked.Increment(ref inside));
                await gate.Task;
                Interlocked.Decrement(ref inside);
            }
        })).ToArray();

        await Eventually(() => Volatile.Read(ref inside) == 2 && semaphore.WaitingCount == 4, "two inside, four waiting");
        Assert.Equal(0, semaphore.Value);
        gate.SetResult();
        await Within(Task.WhenAll(tasks));

        Assert.Equal(2, maxInside);
        await Eventually(() => semaphore.Value == 2, "every permit came back");
    }

    [Fact]
    public void A_negative_initial_value_is_rejected_with_its_value()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(-1, Sys));

        Assert.Equal("initialValue", ex.ParamName);
        Assert.Contains("The initial value must be >= 0", ex.Message);
        Assert.Equal(-1, ex.ActualValue);
    }

    [Fact]
    public async Task A_release_with_waiters_wakes_exactly_one()
    {
        var semaphore = new AsyncSemaphore(0, Sys);
        var waiters = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            waiters.Add(semaphore.AcquireAsync());
            await Eventually(() => semaphore.WaitingCount == i + 1, "queued");
        }

        semaphore.Release();
        await semaphore.DisposeAsync();

        // The dispose was handled after the release: only the waiters the release woke succeeded.
        var outcomes = await Task.WhenAll(waiters.Select(w => w.ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default)));
        Assert.Equal([true, false, false], outcomes);
    }

    [Fact]
    public async Task A_cancelled_waiter_takes_no_permit()
    {
        using var semaphore = new AsyncSemaphore(0, Sys);
        using var cts = new CancellationTokenSource();
        var cancelled = semaphore.AcquireAsync(cts.Token);
        await Eventually(() => semaphore.WaitingCount == 1, "queued");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        semaphore.Release();

        await Eventually(() => semaphore.Value == 1 && semaphore.WaitingCount == 0, "the permit went to the pool");
        await Within(semaphore.AcquireAsync());
    }

    [Fact]
    public async Task Actors_take_and_give_back_permits_through_the_protocol()
    {
        using var semaphore = new AsyncSemaphore(1, Sys);
        var actor = CreateTestProbe();
        semaphore.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        Assert.Equal(0, semaphore.Value);

        semaphore.Coordinator.Tell(new Release(2), actor.Ref);
        await Eventually(() => semaphore.Value == 1, "the permit came back");
        semaphore.Coordinator.Tell(new Release(3), actor.Ref);

        Assert.Equal(3, (await actor.ExpectMsgAsync<Refused>()).RequestId);
    }

    [Fact]
    public async Task A_free_permit_is_taken_without_the_coordinator_only_while_nobody_waits()
    {
        using var semaphore = new AsyncSemaphore(1, Sys);
        var actor = CreateTestProbe();
        semaphore.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        var waiting = semaphore.AcquireAsync();
        await Eventually(() => semaphore.WaitingCount == 1, "the facade caller waits");

        semaphore.Coordinator.Tell(new Release(2), actor.Ref); // the actor's permit goes to the waiter
        await Within(waiting);
        semaphore.Release(); // nobody waits now: the permit is free for the next caller at once

        Assert.True(semaphore.AcquireAsync().IsCompletedSuccessfully);
        Assert.Equal(0, semaphore.Value);
    }

    [Fact]
    public async Task Facade_and_actor_callers_racing_for_permits_never_exceed_them_and_all_come_back()
    {
        const int permits = 3;
        using var semaphore = new AsyncSemaphore(permits, Sys);
        var inside = 0;
        var mostInside = 0;
        var actors = Enumerable.Range(0, 4).Select(_ => CreateTestProbe()).ToArray();

        var facadeCallers = Enumerable.Range(0, 8).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                using var cts = new CancellationTokenSource();
                var acquire = semaphore.AcquireAsync(cts.Token);
                if (i % 7 == caller % 7)
                {
                    await cts.CancelAsync();
                }

                try
                {
                    await acquire;
                }
                catch (OperationCanceledException)
                {
                    continue;
                }

                Poll.InterlockedMax(ref mostInside, Interlocked.Increment(ref inside));
                await Task.Yield();
                Interlocked.Decrement(ref inside);
                semaphore.Release();
            }
        })).ToArray();
        var actorCallers = actors.Select(actor => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                semaphore.Coordinator.Tell(new Acquire(i), actor.Ref);
                await actor.ExpectMsgAsync(new Acquired(i), TimeSpan.FromSeconds(30));
                Poll.InterlockedMax(ref mostInside, Interlocked.Increment(ref inside));
                Interlocked.Decrement(ref inside);
                semaphore.Coordinator.Tell(new Release(i), actor.Ref);
            }
        })).ToArray();
        await Task.WhenAll(facadeCallers.Concat(actorCallers)).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.InRange(mostInside, 1, permits);
        await Eventually(() => semaphore.Value == permits && semaphore.WaitingCount == 0, "every permit came back");
    }

    [Fact]
    public async Task A_permit_held_by_an_actor_comes_back_when_it_stops()
    {
        using var semaphore = new AsyncSemaphore(1, Sys);
        var actor = CreateTestProbe();
        semaphore.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        var waiting = semaphore.AcquireAsync();

        Sys.Stop(actor.Ref);

        await Within(waiting);
    }
}

public class AsyncEventTests : ActorQueueTestKit
{
    [Fact]
    public async Task Set_wakes_every_waiter_and_later_waits_complete_at_once()
    {
        using var @event = new AsyncEvent(Sys);
        var first = @event.WaitAsync();
        var second = @event.WaitAsync();
        Assert.False(@event.IsSet);
        Assert.False(first.IsCompleted || second.IsCompleted);

        @event.Set();

        await Within(Task.WhenAll(first, second));
        Assert.True(@event.IsSet);
        Assert.True(@event.WaitAsync().IsCompletedSuccessfully);
        @event.Set();
    }

    [Fact]
    public async Task A_cancelled_wait_leaves_the_event_usable()
    {
        using var @event = new AsyncEvent(Sys);
        using var cts = new CancellationTokenSource();
        var cancelled = @event.WaitAsync(cts.Token);
        var other = @event.WaitAsync();

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        Assert.False(other.IsCompleted);
        @event.Set();

        await Within(other);
    }

    [Fact]
    public async Task A_thousand_facade_waiters_share_one_task_and_cost_the_coordinator_nothing()
    {
        using var @event = new AsyncEvent(Sys);
        // Callers on many threads at once: those racing to start the shared wait must all end up on the same task.
        var waits = await Within(Task.WhenAll(Enumerable.Range(0, 1_000).Select(_ => Task.Run(() => Task.FromResult(@event.WaitAsync())))));
        Assert.All(waits, wait => Assert.Same(waits[0], wait));
        Assert.False(waits[0].IsCompleted);
        Assert.Equal(0, @event.WaitingCount);

        @event.Set();

        await Within(Task.WhenAll(waits));
    }

    [Fact]
    public async Task Disposing_fails_every_facade_waiter_with_ObjectDisposedException()
    {
        var @event = new AsyncEvent(Sys);
        var first = @event.WaitAsync();
        var second = @event.WaitAsync(new CancellationTokenSource().Token);

        await @event.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(first));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(second));
    }

    [Fact]
    public async Task An_actor_waits_for_the_event_and_another_sets_it()
    {
        using var @event = new AsyncEvent(Sys);
        var waiter = CreateTestProbe();
        var setter = CreateTestProbe();
        @event.Coordinator.Tell(new Acquire(5), waiter.Ref);
        await Eventually(() => @event.WaitingCount == 1, "the actor waits");

        @event.Coordinator.Tell(Set.Instance, setter.Ref);

        await waiter.ExpectMsgAsync(new Acquired(5));
        await Eventually(() => @event.IsSet, "set");
    }
}
