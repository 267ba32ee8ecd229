using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Primitives;
using Akka.Actor;
using Akka.Streams;
using AqLimiter = ActorQueue.Actors.ConcurrencyLimiter;
using RateLimitingLimiter = System.Threading.RateLimiting.ConcurrencyLimiter;

namespace ActorQueue.Bench;

/// <summary>How much work each scenario does: <see cref="Quick"/> keeps the suite under a minute on 2 cores.</summary>
internal sealed record Sizes(int LimiterOps, int ContendedPerTask, int QueueItems, int BatchItems, int IoItems, int LockOps,
                             int LockContendedPerTask, int PingPongTurns, int MemoryWaiters, int[] ScalingSizes)
{
    public static Sizes Quick { get; } = new(50_000, 400, 60_000, 300_000, 6_000, 50_000, 1_000, 5_000, 50_000, [10, 1_000, 30_000]);

    public static Sizes Full { get; } = new(100_000, 1_000, 200_000, 1_000_000, 20_000, 100_000, 2_000, 10_000, 100_000, [10, 1_000, 100_000]);
}

/// <summary>The scenarios of the benchmark issue (their names are a contract), each with ActorQueue first and then its peers.</summary>
internal static partial class Scenarios
{
    private const int Workers = 4;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        var materializer = system.Materializer();
        yield return new Scenario("limiter-uncontended", "ops/s",
        [
            new(Runner.Ours, () => LimiterLoop(new AqLimiter(1, system: system), sizes.LimiterOps)),
            new("SemaphoreSlim", () => SemaphoreLoop(new SemaphoreSlim(1), sizes.LimiterOps)),
            new("RateLimiting", () => RateLimitingLoop(NewRateLimiter(1), sizes.LimiterOps)),
        ], new Target("RateLimiting", 0.25));

        yield return new Scenario("limiter-contended", "ops/s",
        [
            new(Runner.Ours, () => Contended(64, sizes.ContendedPerTask, new AqLimiter(4, system: system))),
            new("SemaphoreSlim", () => ContendedSemaphore(64, sizes.ContendedPerTask, new SemaphoreSlim(4))),
            new("RateLimiting", () => ContendedRateLimiter(64, sizes.ContendedPerTask, NewRateLimiter(4))),
            new(Floors.Bare, () => Floors.TaskCallers(system, 64, sizes.ContendedPerTask, 4)),
            new(LockLimiterFloor.Name, () => Parallel(64, sizes.ContendedPerTask, ContendedFloor(new LockLimiterFloor(4)))),
        ], new Target("RateLimiting", 1.0));

        yield return new Scenario("queue-put", "ops/s",
        [
            new(Runner.Ours, () => ActorQueuePut(system, sizes.QueueItems, Workers, _ => Task.CompletedTask)),
            new("Channels", () => ChannelPut(sizes.QueueItems, Workers, _ => Task.CompletedTask)),
            new("Dataflow", () => DataflowPut(sizes.QueueItems, Workers, _ => Task.CompletedTask)),
            new("AkkaStreams", () => AkkaStreamsPut(materializer, sizes.QueueItems, Workers)),
        ], new Target("Dataflow", 0.5));

        yield return new Scenario("queue-batch", "ops/s",
        [
            new(Runner.Ours, () => ActorQueueBatch(system, sizes.BatchItems, Workers)),
            new("Dataflow", () => DataflowPut(sizes.BatchItems, Workers, _ => Task.CompletedTask)),
            new("Channels", () => ChannelPut(sizes.BatchItems, Workers, _ => Task.CompletedTask)),
        ], new Target("Dataflow", 1.0));

        yield return new Scenario("queue-io", "ops/s",
        [
            new(Runner.Ours, () => ActorQueuePut(system, sizes.IoItems, 64, _ => Task.Delay(1))),
            new("Dataflow", () => DataflowPut(sizes.IoItems, 64, _ => Task.Delay(1))),
        ], new Target("Dataflow", 0.95));

        yield return new Scenario("lock-uncontended", "ops/s",
        [
            new(Runner.Ours, () => AsyncLockLoop(new AsyncLock(system), sizes.LockOps)),
            new("NitoAsyncEx", () => NitoLockLoop(new Nito.AsyncEx.AsyncLock(), sizes.LockOps)),
            new("SemaphoreSlim", () => SemaphoreLoop(new SemaphoreSlim(1), sizes.LockOps)),
        ], new Target("NitoAsyncEx", 0.25));

        yield return new Scenario("lock-contended", "ops/s",
        [
            new(Runner.Ours, () => ContendedLock(16, sizes.LockContendedPerTask, new AsyncLock(system))),
            new("NitoAsyncEx", () => ContendedNitoLock(16, sizes.LockContendedPerTask, new Nito.AsyncEx.AsyncLock())),
            new("SemaphoreSlim", () => ContendedSemaphore(16, sizes.LockContendedPerTask, new SemaphoreSlim(1))),
        ], new Target("NitoAsyncEx", 1.0));

        foreach (var scenario in LockFloorScenarios.All(system, sizes))
        {
            yield return scenario;
        }

        yield return new Scenario("condition-pingpong", "ops/s",
        [
            new(Runner.Ours, () => ConditionPingPong(new AsyncCondition(system: system), sizes.PingPongTurns)),
            new("NitoAsyncEx", () => MonitorPingPong(new Nito.AsyncEx.AsyncMonitor(), sizes.PingPongTurns)),
        ], new Target("NitoAsyncEx", 0.5));

        yield return new Scenario("limiter-waiters-memory", "bytes",
        [
            new(Runner.Ours, () => ActorQueueWaiterBytes(system, sizes.MemoryWaiters)),
            new("RateLimiting", () => RateLimitingWaiterBytes(sizes.MemoryWaiters)),
        ], new Target("RateLimiting", 2.0, AtMost: true));

        foreach (var size in sizes.ScalingSizes)
        {
            yield return new Scenario($"scaling-limiter-{size}", "ops/s",
                [new(Runner.Ours, () => Contended(size, 1, new AqLimiter(4, system: system)))]);
            yield return new Scenario($"scaling-queue-{size}", "ops/s",
                [new(Runner.Ours, () => ActorQueueBacklog(system, size))]);
        }

        foreach (var scenario in LimitScenarios.All(system, sizes))
        {
            yield return scenario;
        }

        foreach (var scenario in RateScenarios.All(system, sizes))
        {
            yield return scenario;
        }

        foreach (var scenario in WaitingPathScenarios.All(system, sizes))
        {
            yield return scenario;
        }
    }

    internal static RateLimitingLimiter NewRateLimiter(int permits) => new(new ConcurrencyLimiterOptions
    {
        PermitLimit = permits,
        QueueLimit = int.MaxValue,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    private static async Task<double> LimiterLoop(AqLimiter limiter, int operations)
    {
        await using (limiter)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await limiter.AcquireAsync("bench");
                }
            });
        }
    }

    private static async Task<double> SemaphoreLoop(SemaphoreSlim semaphore, int operations)
    {
        using (semaphore)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    await semaphore.WaitAsync();
                    semaphore.Release();
                }
            });
        }
    }

    private static async Task<double> RateLimitingLoop(RateLimitingLimiter limiter, int operations)
    {
        await using (limiter)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await limiter.AcquireAsync(1);
                }
            });
        }
    }

    internal static Task<double> Parallel(int tasks, int perTask, Func<Task> iteration) =>
        Runner.OpsPerSecond((long)tasks * perTask, () => Task.WhenAll(Enumerable.Range(0, tasks).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < perTask; i++)
            {
                await iteration();
            }
        }))));

    internal static async Task<double> Contended(int tasks, int perTask, AqLimiter limiter, bool yieldWhileHeld = true)
    {
        await using (limiter)
        {
            return await Parallel(tasks, perTask, async () =>
            {
                using var lease = await limiter.AcquireAsync("bench");
                if (yieldWhileHeld)
                {
                    await Task.Yield();
                }
            });
        }
    }

    private static Func<Task> ContendedFloor(LockLimiterFloor floor) => async () =>
    {
        using var lease = await floor.AcquireAsync(1);
        await Task.Yield();
    };

    private static async Task<double> ContendedSemaphore(int tasks, int perTask, SemaphoreSlim semaphore)
    {
        using (semaphore)
        {
            return await Parallel(tasks, perTask, async () =>
            {
                await semaphore.WaitAsync();
                await Task.Yield();
                semaphore.Release();
            });
        }
    }

    internal static async Task<double> ContendedRateLimiter(int tasks, int perTask, RateLimitingLimiter limiter)
    {
        await using (limiter)
        {
            return await Parallel(tasks, perTask, async () =>
            {
                using var lease = await limiter.AcquireAsync(1);
                await Task.Yield();
            });
        }
    }

    private static async Task<double> AsyncLockLoop(AsyncLock @lock, int operations)
    {
        await using (@lock)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    await @lock.AcquireAsync();
                    @lock.Release();
                }
            });
        }
    }

    private static Task<double> NitoLockLoop(Nito.AsyncEx.AsyncLock @lock, int operations) =>
        Runner.OpsPerSecond(operations, async () =>
        {
            for (var i = 0; i < operations; i++)
            {
                using (await @lock.LockAsync())
                {
                }
            }
        });

    private static async Task<double> ContendedLock(int tasks, int perTask, AsyncLock @lock)
    {
        var counter = 0;
        await using (@lock)
        {
            return await Parallel(tasks, perTask, async () =>
            {
                await @lock.AcquireAsync();
                counter++;
                @lock.Release();
            });
        }
    }

    private static Task<double> ContendedNitoLock(int tasks, int perTask, Nito.AsyncEx.AsyncLock @lock)
    {
        var counter = 0;
        return Parallel(tasks, perTask, async () =>
        {
            using (await @lock.LockAsync())
            {
                counter++;
            }
        });
    }

    private static async Task<double> ConditionPingPong(AsyncCondition condition, int turns)
    {
        var turn = 0;
        async Task Player(int me)
        {
            for (var i = 0; i < turns; i++)
            {
                await condition.AcquireAsync();
                while (turn != me)
                {
                    await condition.WaitAsync();
                }

                turn = 1 - me;
                await condition.NotifyAsync();
                condition.Release();
            }
        }

        await using (condition)
        {
            return await Runner.OpsPerSecond(2L * turns, () => Task.WhenAll(Task.Run(() => Player(0)), Task.Run(() => Player(1))));
        }
    }

    private static Task<double> MonitorPingPong(Nito.AsyncEx.AsyncMonitor monitor, int turns)
    {
        var turn = 0;
        async Task Player(int me)
        {
            for (var i = 0; i < turns; i++)
            {
                using (await monitor.EnterAsync())
                {
                    while (turn != me)
                    {
                        await monitor.WaitAsync();
                    }

                    turn = 1 - me;
                    monitor.Pulse();
                }
            }
        }

        return Runner.OpsPerSecond(2L * turns, () => Task.WhenAll(Task.Run(() => Player(0)), Task.Run(() => Player(1))));
    }

    private static async Task<double> ActorQueueWaiterBytes(ActorSystem system, int waiters)
    {
        var limiter = new AqLimiter(1, system: system);
        var holder = await limiter.AcquireAsync("holder");
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var pending = new ValueTask<ConcurrencyLease>[waiters];
        for (var i = 0; i < waiters; i++)
        {
            pending[i] = limiter.AcquireAsync("waiter");
        }

        while (limiter.WaitingCount < waiters)
        {
            await Task.Delay(1);
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(pending);
        holder.Dispose();
        await limiter.DisposeAsync();
        return (after - before) / (double)waiters;
    }

    private static async Task<double> RateLimitingWaiterBytes(int waiters)
    {
        var limiter = NewRateLimiter(1);
        var holder = await limiter.AcquireAsync(1);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var pending = new ValueTask<RateLimitLease>[waiters];
        for (var i = 0; i < waiters; i++)
        {
            pending[i] = limiter.AcquireAsync(1);
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(pending);
        holder.Dispose();
        await limiter.DisposeAsync();
        return (after - before) / (double)waiters;
    }
}
