using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Akka.Actor;
using AqLimiter = ActorQueue.Actors.ConcurrencyLimiter;
using RateLimitingLimiter = System.Threading.RateLimiting.ConcurrencyLimiter;
using RateLimitingOptions = System.Threading.RateLimiting.ConcurrencyLimiterOptions;

namespace ActorQueue.Bench;

/// <summary>
/// The limits of issue 17 against RateLimiting's weighted ConcurrencyLimiter and its PartitionedRateLimiter.
/// Each subject runs its own copy of a loop: the partitioned loops and the contended helper are generic over a tag
/// (<see cref="Ours"/>, <see cref="Peer"/>, <see cref="Floor"/>), and a method generic over a value type is compiled,
/// and profiled by tiered PGO, once per tag. Before round 43 the partitioned rows ran ours and RateLimiting through one
/// method, whose profile-guided code (its guarded devirtualization and inlining of the acquire, the awaiter and the
/// lease's dispose) was shaped by both libraries' calls in the same process: an application using one library has one
/// profile, and with a copy each, ours gained about 10 % against the peer in the same run (BENCHMARKS round 43).
/// </summary>
internal static class LimitScenarios
{
    private const int Keys = 16;
    private const int IdlePartitions = 10_000;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        yield return new Scenario("weighted-uncontended", "ops/s",
        [
            new(Runner.Ours, () => WeightedLoop(new AqLimiter(4, system: system), sizes.LimiterOps)),
            new("RateLimiting", () => WeightedLoop(NewRateLimiter(4), sizes.LimiterOps)),
        ], new Target("RateLimiting", 0.25));

        yield return new Scenario("weighted-contended", "ops/s",
        [
            new(Runner.Ours, () => WeightedContended(64, sizes.ContendedPerTask, new AqLimiter(4, system: system))),
            new("RateLimiting", () => WeightedContended(64, sizes.ContendedPerTask, NewRateLimiter(4))),
            new(LockLimiterFloor.Name, () => WeightedContended(64, sizes.ContendedPerTask, new LockLimiterFloor(4))),
        ], new Target("RateLimiting", 1.0));

        yield return new Scenario("partitioned-uncontended", "ops/s",
        [
            new(Runner.Ours, () => PartitionedLoop<Ours>(NewPartitioned(system), sizes.LimiterOps)),
            new("RateLimiting", () => PartitionedLoop<Peer>(NewPartitionedRateLimiter(), sizes.LimiterOps)),
        ], new Target("RateLimiting", 0.25));

        yield return new Scenario("partitioned-contended", "ops/s",
        [
            new(Runner.Ours, () => PartitionedContended<Ours>(64, sizes.ContendedPerTask, NewPartitioned(system))),
            new("RateLimiting", () => PartitionedContended<Peer>(64, sizes.ContendedPerTask, NewPartitionedRateLimiter())),
            new(LockLimiterFloor.Name, () => PartitionedContended(64, sizes.ContendedPerTask)),
        ], new Target("RateLimiting", 1.0));

        yield return new Scenario("partition-idle-memory", "bytes",
        [
            new(Runner.Ours, () => IdlePartitionBytes(NewPartitioned(system))),
            new("RateLimiting", () => IdlePartitionBytes(NewPartitionedRateLimiter())),
        ], new Target("RateLimiting", 2.0, AtMost: true));
    }

    private static RateLimitingLimiter NewRateLimiter(int permits) => new(new RateLimitingOptions
    {
        PermitLimit = permits,
        QueueLimit = int.MaxValue,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    /// <summary>
    /// Ours through its PartitionedRateLimiter view, so both sides run the same loop; the idle timeout outlasts a run.
    /// Disposing the view leaves the limiter running, so the limiter is the owner each measurement disposes (and awaits)
    /// after its timed part: dropped instead, it was stopped by its finalizer during a later measurement — a peer's.
    /// </summary>
    /// <param name="system">The actor system.</param>
    /// <param name="permits">Each partition's limit.</param>
    internal static (PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) NewPartitioned(ActorSystem system, int permits = 2)
    {
        var limiter = new PartitionedConcurrencyLimiter<int>(new ConcurrencyLimit(permits), TimeSpan.FromMinutes(10), system: system);
        return (limiter.AsPartitionedRateLimiter<int>(key => key), limiter);
    }

    /// <summary>RateLimiting's partitioned concurrency limiter, <paramref name="permits"/> per key, FIFO, without a queue bound; it is its own owner.</summary>
    internal static (PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) NewPartitionedRateLimiter(int permits = 2)
    {
        var limiter = PartitionedRateLimiter.Create<int, int>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new RateLimitingOptions
        {
            PermitLimit = permits,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }));
        return (limiter, limiter);
    }

    private static async Task<double> WeightedLoop(AqLimiter limiter, int operations)
    {
        await using (limiter)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await limiter.AcquireAsync(permits: 1 + (i & 1));
                }
            });
        }
    }

    private static async Task<double> WeightedLoop(RateLimitingLimiter limiter, int operations)
    {
        await using (limiter)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await limiter.AcquireAsync(1 + (i & 1));
                }
            });
        }
    }

    /// <summary><paramref name="tasks"/> tasks each running <paramref name="iteration"/> <paramref name="perTask"/> times; one copy per <typeparamref name="TSubject"/>.</summary>
    private static Task<double> Parallel<TSubject>(int tasks, int perTask, Func<int, int, Task> iteration)
        where TSubject : struct =>
        Runner.OpsPerSecond((long)tasks * perTask, () => Task.WhenAll(Enumerable.Range(0, tasks).Select(task => Task.Run(async () =>
        {
            for (var i = 0; i < perTask; i++)
            {
                await iteration(task, i);
            }
        }))));

    private static async Task<double> WeightedContended(int tasks, int perTask, AqLimiter limiter)
    {
        await using (limiter)
        {
            return await Parallel<Ours>(tasks, perTask, async (task, i) =>
            {
                using var lease = await limiter.AcquireAsync(permits: 1 + ((task + i) & 1));
                await Task.Yield();
            });
        }
    }

    private static async Task<double> WeightedContended(int tasks, int perTask, RateLimitingLimiter limiter)
    {
        await using (limiter)
        {
            return await Parallel<Peer>(tasks, perTask, async (task, i) =>
            {
                using var lease = await limiter.AcquireAsync(1 + ((task + i) & 1));
                await Task.Yield();
            });
        }
    }

    private static Task<double> WeightedContended(int tasks, int perTask, LockLimiterFloor limiter) =>
        Parallel<Floor>(tasks, perTask, async (task, i) =>
        {
            using var lease = await limiter.AcquireAsync(1 + ((task + i) & 1));
            await Task.Yield();
        });

    private static async Task<double> PartitionedLoop<TSubject>((PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) made, int operations)
        where TSubject : struct
    {
        var limiter = made.Limiter;
        await using (made.Owner)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await limiter.AcquireAsync(i % Keys);
                }
            });
        }
    }

    private static async Task<double> PartitionedContended<TSubject>(int tasks, int perTask, (PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) made)
        where TSubject : struct
    {
        var limiter = made.Limiter;
        await using (made.Owner)
        {
            return await Parallel<TSubject>(tasks, perTask, async (task, _) =>
            {
                using var lease = await limiter.AcquireAsync(task % Keys);
                await Task.Yield();
            });
        }
    }

    /// <summary>The floor's partitions: one <see cref="LockLimiterFloor"/> per key in a concurrent dictionary, as RateLimiting keeps its limiters.</summary>
    private static Task<double> PartitionedContended(int tasks, int perTask)
    {
        var partitions = new System.Collections.Concurrent.ConcurrentDictionary<int, LockLimiterFloor>();
        return Parallel<Floor>(tasks, perTask, async (task, _) =>
        {
            using var lease = await partitions.GetOrAdd(task % Keys, static _ => new LockLimiterFloor(2)).AcquireAsync(1);
            await Task.Yield();
        });
    }

    /// <summary>What one partition costs once used and idle: each of many keys taken and given back, then measured before any idle timeout.</summary>
    private static async Task<double> IdlePartitionBytes((PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) made)
    {
        var limiter = made.Limiter;
        await using (made.Owner)
        {
            var before = GC.GetTotalMemory(forceFullCollection: true);
            for (var key = 0; key < IdlePartitions; key++)
            {
                using var lease = await limiter.AcquireAsync(key);
            }

            // Ours releases by message: wait until every partition holds nothing, without timing the wait.
            while (Enumerable.Range(0, IdlePartitions).Any(key => limiter.GetStatistics(key) is { CurrentAvailablePermits: < 2 }))
            {
                await Task.Delay(1);
            }

            var after = GC.GetTotalMemory(forceFullCollection: true);
            GC.KeepAlive(limiter);
            return (after - before) / (double)IdlePartitions;
        }
    }
}

/// <summary>A tag that gives ActorQueue its own copy of a loop the subjects share (see <see cref="LimitScenarios"/>).</summary>
internal readonly struct Ours;

/// <summary>A tag that gives the peer library its own copy of a shared loop (see <see cref="LimitScenarios"/>).</summary>
internal readonly struct Peer;

/// <summary>A tag that gives the floor its own copy of a shared loop (see <see cref="LimitScenarios"/>).</summary>
internal readonly struct Floor;
