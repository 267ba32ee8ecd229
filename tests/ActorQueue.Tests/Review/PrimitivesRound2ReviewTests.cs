using ActorQueue.Primitives;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Review;

/// <summary>Second review of the async primitives (helper primitives2).</summary>
public class PrimitivesRound2ReviewTests : ActorQueueTestKit
{
    /// <summary>A condition wait made at depth 2 returns holding two levels: two releases free the lock, a third throws.</summary>
    [Fact]
    public async Task A_condition_wait_at_depth_two_returns_holding_two_levels()
    {
        using var condition = new AsyncCondition(system: Sys);
        var waiting = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.AcquireAsync();
            await condition.WaitAsync();
            condition.Release();
            Assert.True(condition.Lock.IsHeldByCurrentFlow, "one level is still held");
            condition.Release();
            Assert.Throws<SynchronizationLockException>(condition.Release);
        });
        await Eventually(() => condition.Lock.State.ConditionWaiters == 1 && !condition.Lock.IsLocked, "the waiter waits");

        await InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            Assert.Equal(1, await Within((Task<int>)condition.NotifyAsync(1)));
            condition.Release();
        });
        await Within(waiting);
        await Eventually(() => !condition.Lock.IsLocked, "the lock is free");
    }

    /// <summary>
    /// Disposal racing the termination of the actor system: every waiter of every primitive fails with
    /// <see cref="ObjectDisposedException"/> and every <c>DisposeAsync</c> completes.
    /// </summary>
    [Fact]
    public async Task Disposing_primitives_with_waiters_while_the_actor_system_terminates_completes_and_fails_every_waiter()
    {
        for (var round = 0; round < 6; round++)
        {
            var system = ActorSystem.Create($"review-p2-terminating-{round}",
                ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(ActorQueueRuntime.DefaultConfig));
            var @lock = new AsyncLock(system);
            var semaphore = new AsyncSemaphore(0, system);
            var limiter = new AsyncCapacityLimiter(1, system);
            var @event = new AsyncEvent(system);
            var condition = new AsyncCondition(system: system);

            await @lock.AcquireAsync();
            await limiter.AcquireOnBehalfOfAsync("holder");
            var waits = new List<Task>();
            for (var i = 0; i < 2; i++)
            {
                waits.Add(InAnotherFlow(() => @lock.AcquireAsync()));
                waits.Add(semaphore.AcquireAsync());
                waits.Add(limiter.AcquireOnBehalfOfAsync(new object()));
                waits.Add(@event.WaitAsync());
            }

            waits.Add(InAnotherFlow(async () =>
            {
                await condition.AcquireAsync();
                await condition.WaitAsync();
            }));
            await Eventually(() => @lock.WaitingCount == 2 && semaphore.WaitingCount == 2 && limiter.WaitingCount == 2
                && condition.Lock.State.ConditionWaiters == 1, "everyone waits");

            var terminated = Task.Run(() => system.Terminate());
            var disposals = new[]
            {
                Task.Run(() => @lock.DisposeAsync().AsTask()),
                Task.Run(() => semaphore.DisposeAsync().AsTask()),
                Task.Run(() => limiter.DisposeAsync().AsTask()),
                Task.Run(() => @event.DisposeAsync().AsTask()),
                Task.Run(() => condition.DisposeAsync().AsTask()),
            };

            foreach (var disposal in disposals)
            {
                await Within(disposal);
            }

            foreach (var wait in waits)
            {
                Assert.IsType<ObjectDisposedException>(await Record.ExceptionAsync(() => Within(wait)));
            }

            await Within(terminated);
        }
    }

    /// <summary>
    /// Many flows take and give back permits while their waits are cancelled at random points: no two more than the
    /// permits are ever inside, nobody hangs, and every permit comes back.
    /// </summary>
    [Fact]
    public async Task Semaphore_waiters_cancelled_at_random_points_never_exceed_nor_lose_a_permit()
    {
        const int Permits = 2;
        using var semaphore = new AsyncSemaphore(Permits, Sys);
        var inside = 0;
        var overflow = 0;
        var flows = Enumerable.Range(0, 8).Select(f => InAnotherFlow(async () =>
        {
            var random = new Random(f);
            for (var i = 0; i < 300; i++)
            {
                using var cts = new CancellationTokenSource();
                var acquire = semaphore.AcquireAsync(cts.Token);
                if (random.Next(3) == 0)
                {
                    Thread.SpinWait(random.Next(200));
                    cts.Cancel();
                }

                try
                {
                    await acquire;
                }
                catch (OperationCanceledException)
                {
                    continue;
                }

                if (Interlocked.Increment(ref inside) > Permits)
                {
                    Interlocked.Increment(ref overflow);
                }

                Thread.SpinWait(random.Next(50));
                Interlocked.Decrement(ref inside);
                semaphore.Release();
            }
        })).ToArray();

        await Within(Task.WhenAll(flows));
        Assert.Equal(0, overflow);
        await Eventually(() => semaphore.Value == Permits && semaphore.WaitingCount == 0, $"every permit came back (value {semaphore.Value})");
    }

    /// <summary>
    /// Waiters with their own tokens, some cancelled as the event is set: each ends set or cancelled, and every
    /// waiter that was not cancelled completes.
    /// </summary>
    [Fact]
    public async Task Event_waiters_cancelled_as_it_is_set_each_end_set_or_cancelled()
    {
        for (var round = 0; round < 50; round++)
        {
            using var @event = new AsyncEvent(Sys);
            var sources = Enumerable.Range(0, 20).Select(_ => new CancellationTokenSource()).ToArray();
            var waits = sources.Select(s => @event.WaitAsync(s.Token)).ToArray();
            await Task.WhenAll(Task.Run(() =>
            {
                foreach (var source in sources.Where((_, i) => i % 2 == 0))
                {
                    source.Cancel();
                }
            }), Task.Run(@event.Set));

            for (var i = 0; i < waits.Length; i++)
            {
                var error = await Record.ExceptionAsync(() => Within(waits[i]));
                if (i % 2 == 1)
                {
                    Assert.Null(error);
                }
                else if (error is not null)
                {
                    Assert.IsAssignableFrom<OperationCanceledException>(error);
                }
            }

            Assert.True(@event.WaitAsync().IsCompletedSuccessfully);
            foreach (var source in sources)
            {
                source.Dispose();
            }
        }
    }

    /// <summary>
    /// Producers add items and notify one consumer each; consumers wait on the condition, some of their waits
    /// cancelled at random points (a notified waiter that is cancelled must pass its notify on). Every item is
    /// consumed with no final notify-all to rescue a lost wake-up, and every wait returns holding the lock.
    /// </summary>
    [Fact]
    public async Task Consumers_whose_waits_are_cancelled_at_random_points_lose_no_notify()
    {
        for (var round = 0; round < 5; round++)
        {
            using var condition = new AsyncCondition(system: Sys);
            var items = new Queue<int>();
            const int Produced = 400;
            var consumed = 0;
            var done = false;
            var consumers = Enumerable.Range(0, 4).Select(c => InAnotherFlow(async () =>
            {
                var random = new Random(round * 10 + c);
                await condition.AcquireAsync();
                try
                {
                    while (true)
                    {
                        while (items.Count == 0 && !done)
                        {
                            using var cts = new CancellationTokenSource();
                            var wait = condition.WaitAsync(cts.Token);
                            if (random.Next(4) == 0)
                            {
                                Thread.SpinWait(random.Next(300));
                                cts.Cancel();
                            }

                            try
                            {
                                await wait;
                            }
                            catch (OperationCanceledException)
                            {
                                // Holding the lock again: look at the queue and wait anew.
                            }

                            Assert.True(condition.Lock.IsHeldByCurrentFlow, "a wait returns holding the lock");
                        }

                        if (items.Count == 0)
                        {
                            return;
                        }

                        items.Dequeue();
                        consumed++;
                    }
                }
                finally
                {
                    condition.Release();
                }
            })).ToArray();

            var producers = Enumerable.Range(0, 2).Select(p => InAnotherFlow(async () =>
            {
                for (var i = 0; i < Produced / 2; i++)
                {
                    await condition.AcquireAsync();
                    items.Enqueue(i);
                    await condition.NotifyAsync(1);
                    condition.Release();
                }
            })).ToArray();

            await Within(Task.WhenAll(producers));
            await Eventually(() => Volatile.Read(ref consumed) == Produced,
                $"round {round}: every item is consumed (consumed {Volatile.Read(ref consumed)})");

            await condition.AcquireAsync();
            done = true;
            await condition.NotifyAllAsync();
            condition.Release();
            await Within(Task.WhenAll(consumers));
        }
    }

    /// <summary>
    /// A notify with a token that is already cancelled returns a cancelled task (the task-based pattern, and what every
    /// other async method of the primitives does with such a token) and wakes nobody. Failed before:
    /// <c>NotifyAsync</c> and <c>NotifyAllAsync</c> threw <see cref="OperationCanceledException"/> synchronously,
    /// from a method that returns a task.
    /// </summary>
    [Fact]
    public async Task A_notify_with_an_already_cancelled_token_returns_a_cancelled_task_and_wakes_nobody()
    {
        using var condition = new AsyncCondition(system: Sys);
        var waiting = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.WaitAsync();
            condition.Release();
        });
        await Eventually(() => condition.Lock.State.ConditionWaiters == 1 && !condition.Lock.IsLocked, "one waits");

        await condition.AcquireAsync();
        var cancelled = new CancellationToken(true);
        Task? one = null;
        Task? all = null;
        var error = Record.Exception(() =>
        {
            one = condition.NotifyAsync(1, cancelled);
            all = condition.NotifyAllAsync(cancelled);
        });

        Assert.Null(error); // before: OperationCanceledException thrown by the call itself
        Assert.True(one!.IsCanceled && all!.IsCanceled, "both calls return a cancelled task");
        Assert.Equal(1, condition.Lock.State.ConditionWaiters); // nobody was woken
        Assert.Equal(1, await Within((Task<int>)condition.NotifyAsync(1)));
        condition.Release();
        await Within(waiting);
    }

    /// <summary>
    /// Flows (some of their acquires cancelled at random points, some reentering) and an actor caller share one lock:
    /// never two holders at once, nobody hangs, and the lock ends free with nobody waiting.
    /// </summary>
    [Fact]
    public async Task Flows_with_cancelled_acquires_and_an_actor_share_a_lock_one_holder_at_a_time()
    {
        using var gate = new AsyncLock(Sys);
        var inside = 0;
        var overlaps = 0;
        var flows = Enumerable.Range(0, 4).Select(f => InAnotherFlow(async () =>
        {
            var random = new Random(100 + f);
            for (var i = 0; i < 300; i++)
            {
                using var cts = new CancellationTokenSource();
                var acquire = gate.AcquireAsync(cts.Token);
                if (random.Next(3) == 0)
                {
                    Thread.SpinWait(random.Next(300));
                    cts.Cancel();
                }

                try
                {
                    await acquire;
                }
                catch (OperationCanceledException)
                {
                    continue;
                }

                if (Interlocked.Increment(ref inside) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                if (random.Next(4) == 0)
                {
                    await gate.AcquireAsync(); // a reentry
                    gate.Release();
                }

                Interlocked.Decrement(ref inside);
                gate.Release();
            }
        })).ToList();

        var actor = CreateTestProbe();
        flows.Add(Task.Run(async () =>
        {
            for (var i = 0; i < 60; i++)
            {
                gate.Coordinator.Tell(new CoordinatorProtocol.Acquire(i), actor.Ref);
                await actor.ExpectMsgAsync<CoordinatorProtocol.Acquired>(Dilated(TimeSpan.FromSeconds(10)));
                if (Interlocked.Increment(ref inside) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                Interlocked.Decrement(ref inside);
                gate.Coordinator.Tell(new CoordinatorProtocol.Release(i), actor.Ref);
            }
        }));

        await Within(Task.WhenAll(flows));
        Assert.Equal(0, overlaps);
        await Eventually(() => !gate.IsLocked && gate.WaitingCount == 0, $"free, nobody waits (locked {gate.IsLocked}, waiting {gate.WaitingCount})");
        await Within(InAnotherFlow(async () =>
        {
            await gate.AcquireAsync();
            gate.Release();
        }));
    }
}
