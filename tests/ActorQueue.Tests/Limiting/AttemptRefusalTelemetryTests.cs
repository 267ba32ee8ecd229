using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A <c>RateLimiter</c> adapter's <c>AttemptAcquire</c> that finds too little lent turns a caller away who will not
/// wait: it counts on <c>actorqueue.limiter.rejections</c> with reason <c>would_wait</c> (and on <c>wait_timeouts</c>, as
/// a zero wait timeout's refusal does), so shed load shows on a dashboard. A zero-permit probe asks a question and is
/// not counted; a granted attempt is not either.
/// </summary>
public sealed class AttemptRefusalTelemetryTests : ActorQueueTestKit
{
    private static readonly string WouldWait = $"{ActorQueueTelemetry.LimiterRejections}:would_wait";

    [Fact]
    public async Task A_concurrency_adapters_refused_attempt_counts_as_turned_away_and_a_probe_does_not()
    {
        var name = $"attempts-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        var adapter = limiter.AsRateLimiter();
        await AssertRefusalsCountedAsync(metrics, adapter.AttemptAcquire, permits: 1);
    }

    [Fact]
    public async Task A_model_api_adapters_refused_attempt_counts_as_turned_away_and_a_probe_does_not()
    {
        var name = $"attempts-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 100, 10_000, TimeSpan.FromMinutes(1)), name: name, system: Sys);
        var adapter = limiter.AsRateLimiter();
        await AssertRefusalsCountedAsync(metrics, adapter.AttemptAcquire, permits: 10);
    }

    [Fact]
    public async Task A_partitioned_adapters_refused_attempt_counts_as_turned_away_and_a_probe_does_not()
    {
        var name = $"attempts-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(10), name: name, system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        await AssertRefusalsCountedAsync(metrics, permits => adapter.AttemptAcquire("a", permits), permits: 1);
    }

    /// <summary>
    /// Takes the one slot by attempts until one is granted (an attempt may say no while the gatekeeper is inside a
    /// message, its first included), so the refusals after it are certain, whoever runs when: a probe is not counted,
    /// each of two refused attempts counts once as <c>would_wait</c> and once as a wait timeout.
    /// </summary>
    private static async Task AssertRefusalsCountedAsync(LimiterMetrics metrics, Func<int, System.Threading.RateLimiting.RateLimitLease> attempt, int permits)
    {
        using var held = await Poll.ValueAsync(() => Task.FromResult(attempt(permits)), lease => lease.IsAcquired, TimeSpan.FromSeconds(10));
        var (refused, timeouts) = (metrics.Value(WouldWait), metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
        Assert.False(attempt(0).IsAcquired);
        Assert.Equal(refused, metrics.Value(WouldWait));

        Assert.False(attempt(permits).IsAcquired);
        Assert.False(attempt(permits).IsAcquired);

        Assert.Equal(refused + 2, metrics.Value(WouldWait));
        Assert.Equal(timeouts + 2, metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
    }
}
