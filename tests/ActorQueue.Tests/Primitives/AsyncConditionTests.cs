using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

public class AsyncConditionTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_consumer_waits_for_items_a_producer_notifies_about()
    {
        await using var condition = new AsyncCondition(system: Sys);
        var queue = new Queue<int>();
        var consumed = new List<int>();

        var consumer = InAnotherFlow(async () =>
        {
            while (consumed.Count < 5)
            {
                await using (await condition.LockAsync())
                {
                    while (queue.Count == 0)
                    {
                        await condition.WaitAsync();
                    }

                    consumed.Add(queue.Dequeue());
                }
            }
        });
        var producer = InAnotherFlow(async () =>
        {
            for (var i = 0; i < 5; i++)
            {
                await using (await condition.LockAsync())
                {
                    queue.Enqueue(i);
                    await condition.NotifyAsync();
                }

                await Task.Yield();
            }
        });

        await Within(Task.WhenAll(consumer, producer));
        Assert.Equal([0, 1, 2, 3, 4], consumed);
    }

    [Fact]
    public async Task A_notify_with_nobody_waiting_completes_at_once_and_a_later_waiter_still_needs_its_own()
    {
        await using var condition = new AsyncCondition(system: Sys);
        await condition.AcquireAsync();

        // From a dedicated thread the coordinator never runs inline, so only the skipped round trip completes it at once.
        Task? notify = null;
        var thread = new Thread(() => notify = condition.NotifyAsync());
        thread.Start();
        thread.Join();
        Assert.True(notify!.IsCompletedSuccessfully, "a notify with no waiter should not wait for the coordinator");

        var waiter = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.WaitAsync();
            condition.Release();
            return true;
        });
        condition.Release();
        await Poll.UntilAsync(() => condition.Lock.State.ConditionWaiters == 1, Dilated(TimeSpan.FromSeconds(10)), "the waiter waits");
        Assert.False(waiter.IsCompleted);

        await condition.AcquireAsync();
        await condition.NotifyAsync();
        condition.Release();
        Assert.True(await Within(waiter));
        Assert.Equal(0, condition.Lock.State.ConditionWaiters);
    }

    [Fact]
    public async Task Waiting_or_notifying_without_the_lock_throws()
    {
        await using var condition = new AsyncCondition(system: Sys);

        Assert.Throws<InvalidOperationException>(() => { _ = condition.WaitAsync(); });
        Assert.Throws<InvalidOperationException>(() => { _ = condition.NotifyAsync(); });
        Assert.Throws<InvalidOperationException>(() => { _ = condition.NotifyAllAsync(); });
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => { _ = condition.NotifyAsync(-1); }).ParamName);
    }

    private async Task<List<Task>> StartWaitersAsync(AsyncCondition condition, int count, Func<int, Task>? after = null)
    {
        var waiters = new List<Task>();
        var waiting = 0;
        for (var i = 0; i < count; i++)
        {
            var index = i;
            waiters.Add(InAnotherFlow(async () =>
            {
                await condition.AcquireAsync();
                Interlocked.Increment(ref waiting);
                await condition.WaitAsync();
                Assert.True(condition.Lock.IsHeldByCurrentFlow, "WaitAsync returns holding the lock");
                if (after is not null)
                {
                    await after(index);
                }

                condition.Release();
            }));
            await Eventually(() => Volatile.Read(ref waiting) == index + 1 && !condition.Lock.IsLocked, $"waiter {index} waits");
        }

        return waiters;
    }

    [Fact]
    public async Task Notify_n_wakes_exactly_n_and_notify_all_wakes_the_rest()
    {
        await using var condition = new AsyncCondition(system: Sys);
        var waiters = await StartWaitersAsync(condition, 3);

        await condition.AcquireAsync();
        var woken = await (Task<int>)condition.NotifyAsync(2);
        condition.Release();
        await Within(Task.WhenAll(waiters.Take(2)));

        Assert.Equal(2, woken);
        Assert.False(waiters[2].IsCompleted);
        await condition.AcquireAsync();
        Assert.Equal(1, await (Task<int>)condition.NotifyAllAsync());
        condition.Release();
        await Within(waiters[2]);
    }

    [Fact]
    public async Task A_cancelled_wait_gets_the_lock_back_before_it_throws()
    {
        await using var condition = new AsyncCondition(system: Sys);
        using var cts = new CancellationTokenSource();
        var heldWhenCancelled = false;
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiter = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.AcquireAsync();
            var wait = condition.WaitAsync(cts.Token);
            entered.SetResult();
            try
            {
                await wait;
            }
            catch (OperationCanceledException)
            {
                heldWhenCancelled = condition.Lock.IsHeldByCurrentFlow;
            }

            condition.Release();
            condition.Release(); // the reentrancy depth (2) was restored
            Assert.Throws<SynchronizationLockException>(condition.Release);
        });
        await entered.Task;
        await Eventually(() => !condition.Lock.IsLocked, "the waiter released the lock while waiting");

        await cts.CancelAsync();

        await Within(waiter);
        Assert.True(heldWhenCancelled);
        await Eventually(() => !condition.Lock.IsLocked, "the waiter's releases reached the coordinator");
    }

    [Fact]
    public async Task A_notified_waiter_that_is_cancelled_passes_the_notify_on()
    {
        await using var condition = new AsyncCondition(system: Sys);
        using var cts = new CancellationTokenSource();
        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        var firstWaits = 0;
        var first = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            try
            {
                // WaitAsync registers the cancel callback before it returns; only then may the test cancel.
                var wait = condition.WaitAsync(cts.Token);
                Volatile.Write(ref firstWaits, 1);
                await wait;
                outcomes["first"] = "notified";
            }
            catch (OperationCanceledException)
            {
                outcomes["first"] = condition.Lock.IsHeldByCurrentFlow ? "cancelled-holding" : "cancelled-not-holding";
            }

            condition.Release();
        });
        // Its wait is registered (and its cancel callback with it); the lock is free again only once the wait has been
        // handled, so it is first in the condition.
        await Eventually(() => Volatile.Read(ref firstWaits) == 1 && !condition.Lock.IsLocked, "first waits");
        var secondWaits = await StartWaitersAsync(condition, 1);

        await condition.AcquireAsync();
        Assert.Equal(1, await (Task<int>)condition.NotifyAsync(1));
        // The first waiter was notified; cancel it while the notifier still holds the lock. Cancel() (not CancelAsync)
        // runs the callback, which tells the coordinator, before the Release below is sent.
        cts.Cancel();
        condition.Release();

        await Within(Task.WhenAll(first, secondWaits[0]));
        Assert.Equal("cancelled-holding", outcomes["first"]);
    }
}
