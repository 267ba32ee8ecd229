using System.Threading.RateLimiting;
using Akka.Actor;
using AqLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Bench;

/// <summary>
/// The contended limiter's waiting path on one thread: a queue of callers always waits, and each operation releases the
/// oldest lease (which grants the head of the queue) and queues one caller more. No second thread takes part, so what
/// is measured is the work of a queued acquire and of a release that grants — the instruction path — without the cost
/// of moving cache lines between CPUs, which on this machine swings by phases (BENCHMARKS.md, rounds 14 and 15).
/// <c>partitioned-waiting-path</c> does the same in one key's partition, through each library's
/// <see cref="PartitionedRateLimiter{TResource}"/> (round 43). Neither has a target: they explain the contended rows.
/// </summary>
internal static class WaitingPathScenarios
{
    /// <summary>How many callers wait behind the four permits at every instant.</summary>
    private const int Queued = 32;

    /// <summary>The one key the partitioned path uses.</summary>
    private const int Key = 3;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        yield return new Scenario("weighted-waiting-path", "ops/s",
        [
            new(Runner.Ours, () => OursAsync(system, sizes.LimiterOps)),
            new("RateLimiting", () => RateLimitingAsync(sizes.LimiterOps)),
        ]);
        yield return new Scenario("partitioned-waiting-path", "ops/s",
        [
            new(Runner.Ours, () => OneKeyAsync<Ours>(LimitScenarios.NewPartitioned(system, permits: 4), sizes.LimiterOps)),
            new("RateLimiting", () => OneKeyAsync<Peer>(LimitScenarios.NewPartitionedRateLimiter(permits: 4), sizes.LimiterOps)),
        ]);
    }

    private static async Task<double> OursAsync(ActorSystem system, int operations)
    {
        await using var limiter = new AqLimiter(4, system: system);
        return await HandDownAsync(operations, i => limiter.AcquireAsync(permits: 1 + (i & 1)));
    }

    private static async Task<double> RateLimitingAsync(int operations)
    {
        await using var limiter = Scenarios.NewRateLimiter(4);
        return await HandDownAsync(operations, i => limiter.AcquireAsync(1 + (i & 1)));
    }

    /// <summary>One key of <paramref name="made"/>'s, through its <see cref="PartitionedRateLimiter{TResource}"/> (as <c>partitioned-contended</c> calls it); one copy per <typeparamref name="TSubject"/>, as in <see cref="LimitScenarios"/>.</summary>
    private static async Task<double> OneKeyAsync<TSubject>((PartitionedRateLimiter<int> Limiter, IAsyncDisposable Owner) made, int operations)
        where TSubject : struct
    {
        await using (made.Owner)
        {
            return await HandDownAsync(operations, _ => made.Limiter.AcquireAsync(Key));
        }
    }

    private static async Task<double> HandDownAsync<TLease>(int operations, Func<int, ValueTask<TLease>> acquire)
        where TLease : IDisposable
    {
        var held = new Queue<TLease>();
        var waiting = new Queue<ValueTask<TLease>>();
        var next = 0;
        while (waiting.Count < Queued)
        {
            waiting.Enqueue(acquire(next++));
        }

        await UntilOneIsHeldAsync();
        var rate = await Runner.OpsPerSecond(operations, async () =>
        {
            for (var i = 0; i < operations; i++)
            {
                held.Dequeue().Dispose();
                waiting.Enqueue(acquire(next++));
                await UntilOneIsHeldAsync();
            }
        });

        while (held.Count > 0)
        {
            held.Dequeue().Dispose();
        }

        while (waiting.Count > 0)
        {
            (await waiting.Dequeue()).Dispose();
        }

        return rate;

        // A grant made in the releaser's own call is collected at once; one the gatekeeper's actor makes later is awaited.
        async ValueTask UntilOneIsHeldAsync()
        {
            while (true)
            {
                while (waiting.Count > 0 && waiting.Peek().IsCompleted)
                {
                    held.Enqueue(waiting.Dequeue().Result);
                }

                if (held.Count > 0)
                {
                    return;
                }

                await Task.Yield();
            }
        }
    }
}
