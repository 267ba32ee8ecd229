using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Bench;

/// <summary>
/// The limits over time of issue 18 against RateLimiting's TokenBucketRateLimiter and SlidingWindowRateLimiter, both
/// through the RateLimiter API, with rates that never run dry: what a grant costs, alone and under 64 tasks.
/// </summary>
internal static class RateScenarios
{
    private const int Plenty = int.MaxValue / 2;

    /// <summary>
    /// How many times a contended limiter scenario's work a contended rate scenario does: a grant that never waits is
    /// several times faster than one that does, and at the limiters' size one measurement lasted 10–20 ms, short enough
    /// for thread-pool noise to move either side by half. It also spends more than one loan (524,287 requests), so a
    /// renewal under 64 callers is part of what is measured (BENCHMARKS round 11).
    /// </summary>
    private const int RateWork = 10;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        yield return new Scenario("token-bucket-uncontended", "ops/s",
        [
            new(Runner.Ours, () => Loop(Ours(system, slidingSegments: null), sizes.LimiterOps)),
            new("RateLimiting", () => Loop(TokenBucket(), sizes.LimiterOps)),
        ], new Target("RateLimiting", 0.25));

        yield return new Scenario("token-bucket-contended", "ops/s",
        [
            new(Runner.Ours, () => Contended(64, sizes.ContendedPerTask * RateWork, Ours(system, slidingSegments: null))),
            new("RateLimiting", () => Contended(64, sizes.ContendedPerTask * RateWork, TokenBucket())),
        ], new Target("RateLimiting", 1.0));

        yield return new Scenario("sliding-window-uncontended", "ops/s",
        [
            new(Runner.Ours, () => Loop(Ours(system, slidingSegments: 6), sizes.LimiterOps)),
            new("RateLimiting", () => Loop(SlidingWindow(), sizes.LimiterOps)),
        ], new Target("RateLimiting", 0.25));

        yield return new Scenario("sliding-window-contended", "ops/s",
        [
            new(Runner.Ours, () => Contended(64, sizes.ContendedPerTask * RateWork, Ours(system, slidingSegments: 6))),
            new("RateLimiting", () => Contended(64, sizes.ContendedPerTask * RateWork, SlidingWindow())),
        ], new Target("RateLimiting", 1.0));
    }

    /// <summary>Ours as a RateLimiter of tokens; the limiter is owned by the returned adapter's run and disposed with it.</summary>
    private static (RateLimiter Limiter, IAsyncDisposable Owner) Ours(ActorSystem system, int? slidingSegments)
    {
        var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(Plenty, Plenty, Plenty, TimeSpan.FromMinutes(1)) { SlidingWindowSegments = slidingSegments }, system: system);
        return (limiter.AsRateLimiter(), limiter);
    }

    private static (RateLimiter Limiter, IAsyncDisposable Owner) TokenBucket()
    {
        var limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = Plenty,
            TokensPerPeriod = Plenty,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        return (limiter, limiter);
    }

    private static (RateLimiter Limiter, IAsyncDisposable Owner) SlidingWindow()
    {
        var limiter = new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
        {
            PermitLimit = Plenty,
            Window = TimeSpan.FromMinutes(1),
            SegmentsPerWindow = 6,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        return (limiter, limiter);
    }

    private static async Task<double> Loop((RateLimiter Limiter, IAsyncDisposable Owner) subject, int operations)
    {
        await using (subject.Owner)
        {
            return await Runner.OpsPerSecond(operations, async () =>
            {
                for (var i = 0; i < operations; i++)
                {
                    using var lease = await subject.Limiter.AcquireAsync(1);
                }
            });
        }
    }

    private static async Task<double> Contended(int tasks, int perTask, (RateLimiter Limiter, IAsyncDisposable Owner) subject)
    {
        await using (subject.Owner)
        {
            return await Runner.OpsPerSecond((long)tasks * perTask, () => Task.WhenAll(Enumerable.Range(0, tasks).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < perTask; i++)
                {
                    using var lease = await subject.Limiter.AcquireAsync(1);
                    await Task.Yield();
                }
            }))));
        }
    }
}
