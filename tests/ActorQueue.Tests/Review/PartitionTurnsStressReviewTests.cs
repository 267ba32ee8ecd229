using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Limiting;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of branch partition-turns (TurnInbox) under load: many keys, weighted requests, cancellations, zero
/// waits and wait timeouts, while sweeps drop idle partitions and make them again. Nothing may be lost (every call is
/// answered), no key may hold more than its limit, the counts must be exact at rest (statistics and the running and
/// waiting counters), and a dispose amid it all fails every waiter with <see cref="ObjectDisposedException"/> and
/// completes. Passed on partition-turns at 4d5bf49 (kept as a guard for the turns).
/// </summary>
public sealed class PartitionTurnsStressReviewTests : ActorQueueTestKit
{
    private const int Limit = 2;
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task Requests_releases_cancellations_and_timeouts_racing_sweeps_lose_nothing_and_leave_exact_counts()
    {
        var name = $"review-stress-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(Limit) { MaxQueued = 6, TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var held = new ConcurrentDictionary<string, int>();
        var overLimit = 0;
        var outcomes = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var sweeper = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                _clock.Advance(IdleTimeout / 3);
                await Task.Delay(1);
            }
        });

        var callers = Enumerable.Range(0, 8).Select(caller => InAnotherFlow(async () =>
        {
            var random = new Random(caller);
            // At least 1500 calls each, and on until sweeps have dropped and made partitions again (however slow the sweeper).
            for (var i = 0; i < 1500 || (limiter.PartitionsMade < 40 && i < 300_000); i++)
            {
                // Keys move on every few hundred calls, so the ones left behind go idle and are dropped amid the traffic.
                var key = $"k{((i / 250) * 7 + random.Next(6)) % 24}";
                if (caller == 0 && i % 250 == 0)
                {
                    // Time moves amid the traffic however the sweeper task is scheduled: in CI (c3a0b1f) a starved
                    // sweeper let 2.3 M grants pass with no partition dropped, and the coverage guard below failed.
                    _clock.Advance(IdleTimeout / 3);
                }

                var permits = random.Next(4) == 0 ? 2 : 1;
                using var cancel = new CancellationTokenSource();
                TimeSpan? wait = random.Next(8) switch { 0 => TimeSpan.Zero, 1 => TimeSpan.FromSeconds(5), _ => null };
                if (random.Next(10) == 0)
                {
                    cancel.CancelAfter(random.Next(2));
                }

                try
                {
                    using var lease = await limiter.AcquireAsync(key, permits, priority: random.Next(2), waitTimeout: wait, cancellationToken: cancel.Token);
                    if (held.AddOrUpdate(key, permits, (_, now) => now + permits) > Limit)
                    {
                        Interlocked.Increment(ref overLimit);
                    }

                    await Task.Yield();
                    held.AddOrUpdate(key, 0, (_, now) => now - permits);
                    outcomes.AddOrUpdate("granted", 1, (_, n) => n + 1);
                }
                catch (Exception error) when (error is OperationCanceledException or ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException)
                {
                    outcomes.AddOrUpdate(error.GetType().Name, 1, (_, n) => n + 1);
                }
            }
        }));
        await Within(Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(90)));
        await stop.CancelAsync();
        await sweeper;

        Assert.Equal(0, overLimit);
        // Aimed at 40 (the callers go on until then, within a bound); what the test needs is that some of the 24 keys' partitions
        // were dropped and made again amid the traffic — on a loaded machine the sweeper may have managed only a few.
        Assert.True(limiter.PartitionsMade > 24, $"partitions were dropped and made again ({limiter.PartitionsMade} made; {string.Join(", ", outcomes)})");
        var statistics = await limiter.GetStatisticsAsync();
        Assert.All(statistics, entry => Assert.Equal((entry.Key, 0, 0), (entry.Key, entry.Value.Running, entry.Value.Waiting)));

        // A sweep takes every partition's turn, which counts what the loans moved: then the counters are exact too.
        _clock.Advance(IdleTimeout);
        await Eventually(
            () => metrics.Value(ActorQueueTelemetry.LimiterRunning) == 0 && metrics.Value(ActorQueueTelemetry.LimiterWaiting) == 0,
            $"the running and waiting counters are back to 0 (running {metrics.Value(ActorQueueTelemetry.LimiterRunning)}, waiting {metrics.Value(ActorQueueTelemetry.LimiterWaiting)})");
    }

    [Fact]
    public async Task Disposing_amid_requests_and_releases_fails_every_waiter_as_disposed_and_completes()
    {
        for (var round = 0; round < 20; round++)
        {
            var limiter = new PartitionedConcurrencyLimiter<string>(
                new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, $"review-dispose-{round}", system: Sys);
            var answered = 0;
            var wrong = new ConcurrentQueue<string>();
            var callers = Enumerable.Range(0, 6).Select(caller => InAnotherFlow(async () =>
            {
                for (var i = 0; i < 1_000_000; i++)
                {
                    try
                    {
                        using var lease = await limiter.AcquireAsync($"k{(caller + i) % 4}");
                        await Task.Yield();
                    }
                    catch (ObjectDisposedException)
                    {
                        Interlocked.Increment(ref answered);
                        return;
                    }
                    catch (Exception error)
                    {
                        wrong.Enqueue($"{error.GetType().Name}: {error.Message}");
                        return;
                    }
                }
            })).ToList();

            await Eventually(() => limiter.PartitionCount == 4, "every key has its partition");
            await Within(limiter.DisposeAsync().AsTask());

            await Within(Task.WhenAll(callers));
            Assert.Empty(wrong);
            Assert.Equal(6, answered);
        }
    }
}
