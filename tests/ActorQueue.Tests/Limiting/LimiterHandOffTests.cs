using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A contended limiter's releases hand their permits to the waiters the gatekeeper published, through the facade and a
/// real gatekeeper: FIFO, exact caps, shrinks, dispose, and racing callers that cancel, time out and jump the queue.
/// </summary>
public class LimiterHandOffTests : ActorQueueTestKit
{
    private ConcurrencyLimiter NewLimiter(int maxRunning) => new(maxRunning, system: Sys);

    [Fact]
    public async Task Waiters_queued_by_one_caller_are_granted_in_call_order_as_releases_hand_them_on()
    {
        const int waiters = 200;
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var order = new List<int>();
        var cancels = new List<CancellationTokenSource>();
        var runs = new List<Task>();
        for (var i = 0; i < waiters; i++)
        {
            var index = i;
            var cancel = new CancellationTokenSource();
            cancels.Add(cancel);
            var acquired = limiter.AcquireAsync("waiter", cancel.Token).AsTask();
            runs.Add(InAnotherFlow(async () =>
            {
                ConcurrencyLease lease;
                try
                {
                    lease = await acquired;
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                order.Add(index); // one holder at a time: the list is never written by two at once
                await Task.Yield();
                lease.Dispose();
            }));
        }

        await Eventually(() => limiter.HandOffOf().IsPublished, "the gatekeeper publishes the front of its queue");
        for (var i = 3; i < waiters; i += 7)
        {
            await cancels[i].CancelAsync();
        }

        holder.Dispose();
        await Within(Task.WhenAll(runs));

        var expected = Enumerable.Range(0, waiters).Where(i => i < 3 || (i - 3) % 7 != 0).ToList();
        Assert.Equal(expected, order);
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "everything given back");
        cancels.ForEach(cancel => cancel.Dispose());
    }

    [Fact]
    public async Task No_head_is_handed_a_permit_once_a_shrink_returned()
    {
        var limiter = NewLimiter(2);
        var (one, two) = (await limiter.AcquireAsync("one"), await limiter.AcquireAsync("two"));
        var waiter = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.HandOffOf().IsPublished, "the waiter is published");

        limiter.Resize(maxRunning: 1);
        one.Dispose();
        var status = await this.StatusOf(limiter);
        Assert.False(waiter.IsCompleted, "one permit is still held and the limit is 1");
        Assert.Equal((1, 1), (status.Running, status.Waiting));

        two.Dispose();
        (await Within(waiter)).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "everything given back");
    }

    [Fact]
    public async Task A_prioritised_caller_whose_call_returned_gets_the_next_permit_before_the_published_head()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var waiter = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.HandOffOf().IsPublished, "the waiter is published");

        var urgent = limiter.AcquireAsync(permits: 1, priority: 1, source: "urgent").AsTask();
        holder.Dispose();
        var first = await Within(Task.WhenAny(urgent, waiter));
        Assert.Same(urgent, first);
        (await urgent).Dispose();
        (await Within(waiter)).Dispose();
    }

    [Fact]
    public async Task A_published_head_that_withdrew_is_not_handed_a_permit_nor_counted_off_twice()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        using var cancel = new CancellationTokenSource();
        var (withdrawn, next) = (limiter.AcquireAsync("withdrawn", cancel.Token).AsTask(), limiter.AcquireAsync("next").AsTask());
        await this.StatusOf(limiter); // a message that is not a newcomer: both waiters are published at its end
        await Eventually(() => limiter.HandOffOf().IsPublished, "the waiters are published");

        await cancel.CancelAsync();
        await Eventually(() => limiter.WaitingCount == 1, "the withdrawal is handled");
        holder.Dispose();
        Assert.Equal(0, limiter.WaitingCount);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => withdrawn);
        (await Within(next)).Dispose();
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
        Assert.Equal(0, limiter.WaitingCount);
    }

    [Fact]
    public async Task An_actor_queued_in_front_of_the_published_heads_gets_the_next_permit()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var waiter = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.HandOffOf().IsPublished, "the waiter is published");

        var actor = CreateTestProbe();
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 1) { Priority = 1 }, actor.Ref);
        await actor.ExpectMsgAsync<GatekeeperProtocol.Queued>();
        holder.Dispose();
        var granted = await actor.ExpectMsgAsync<GatekeeperProtocol.Granted>();
        Assert.False(waiter.IsCompleted, "the published head was queued behind the actor by then");

        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Release(granted.LeaseId), actor.Ref);
        (await Within(waiter)).Dispose();
    }

    [Fact]
    public async Task A_dispose_fails_the_published_heads_and_no_later_release_hands_them_a_permit()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var (first, second) = (limiter.AcquireAsync("first").AsTask(), limiter.AcquireAsync("second").AsTask());
        await Eventually(() => limiter.HandOffOf().IsPublished, "the waiters are published");

        limiter.Dispose();
        holder.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(first));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(second));
    }

    [Fact]
    public async Task Racing_releases_cancels_timeouts_prioritised_newcomers_and_resizes_keep_the_cap_and_the_counts()
    {
        const int most = 4;
        var limiter = NewLimiter(most);
        var inside = 0;
        var mostInside = 0;
        var granted = 0;
        var wrongCounts = 0;
        using var stop = new CancellationTokenSource();

        // The counts a caller reads at any instant: never below 0 waiting, never above the cap running.
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (limiter.WaitingCount < 0 || limiter.RunningCount is < 0 or > most)
                {
                    Interlocked.Increment(ref wrongCounts);
                }
            }
        });
        var resizer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                limiter.Resize(maxRunning: most - (i % 2)); // between 4 and 3: at most 4 are ever in use
                await Task.Delay(1);
            }
        });
        var callers = Enumerable.Range(0, 32).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                var permits = 1 + ((caller + i) % 2);
                using var cancel = (caller + i) % 5 == 0 ? new CancellationTokenSource(TimeSpan.FromTicks(1 + i % 50)) : null;
                ConcurrencyLease lease;
                try
                {
                    lease = (caller + i) % 7 == 0
                        ? await limiter.AcquireAsync(permits, priority: 1 + i % 2, waitTimeout: TimeSpan.FromMilliseconds(1), source: "timed")
                        : await limiter.AcquireAsync(permits, priority: (caller + i) % 11 == 0 ? 1 : 0, source: "caller", cancellationToken: cancel?.Token ?? default);
                }
                catch (Exception error) when (error is OperationCanceledException or ConcurrencyWaitTimeoutException)
                {
                    continue;
                }

                Interlocked.Increment(ref granted);
                Poll.InterlockedMax(ref mostInside, Interlocked.Add(ref inside, permits));
                await Task.Yield();
                Interlocked.Add(ref inside, -permits);
                lease.Dispose();
            }
        })).ToArray();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));
        await stop.CancelAsync();
        await Within(Task.WhenAll(reader, resizer));

        Assert.True(granted > 0);
        Assert.InRange(mostInside, 1, most);
        Assert.Equal(0, wrongCounts);
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "everything given back");
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task Racing_releases_and_a_dispose_answer_every_waiter_once_within_the_cap()
    {
        const int most = 2;
        var limiter = NewLimiter(most);
        var inside = 0;
        var mostInside = 0;
        var granted = 0;
        var callers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                ConcurrencyLease lease;
                try
                {
                    lease = await limiter.AcquireAsync("caller");
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                Interlocked.Increment(ref granted);
                Poll.InterlockedMax(ref mostInside, Interlocked.Increment(ref inside));
                await Task.Yield();
                Interlocked.Decrement(ref inside);
                lease.Dispose();
            }
        })).ToArray();

        await Eventually(() => Volatile.Read(ref granted) > 2_000, "the callers run through hand-offs");
        await limiter.DisposeAsync();
        await Within(Task.WhenAll(callers));
        Assert.InRange(mostInside, 1, most);
    }
}
