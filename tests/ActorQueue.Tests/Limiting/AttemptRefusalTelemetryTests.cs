using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A <c>RateLimiter</c> adapter's <c>AttemptAcquire</c> that finds too little lent turns a caller away who will not
/// wait: it counts on <c>actorqueue.limiter.rejections</c> with reason <c>would_wait</c> (and on <c>wait_timeouts</c>, as
/// a zero wait timeout's refusal does), so shed load shows on a dashboard. A zero-permit probe asks a question and is
/// not counted; a granted attempt is not either. Each test holds the one slot first, so the refusals it counts are
/// certain.
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

        using var held = await HeldAsync(() => adapter.AttemptAcquire(1));
        var (refused, timeouts) = (metrics.Value(WouldWait), metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
        Assert.False(adapter.AttemptAcquire(0).IsAcquired);
        Assert.Equal(refused, metrics.Value(WouldWait));

        Assert.False(adapter.AttemptAcquire(1).IsAcquired);
        Assert.False(adapter.AttemptAcquire(1).IsAcquired);

        Assert.Equal(refused + 2, metrics.Value(WouldWait));
        Assert.Equal(timeouts + 2, metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
    }

    [Fact]
    public async Task A_model_api_adapters_refused_attempt_counts_as_turned_away_and_a_probe_does_not()
    {
        var name = $"attempts-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 100, 10_000, TimeSpan.FromMinutes(1)), name: name, system: Sys);
        var adapter = limiter.AsRateLimiter();

        using var held = await HeldAsync(() => adapter.AttemptAcquire(10));
        var (refused, timeouts) = (metrics.Value(WouldWait), metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
        Assert.False(adapter.AttemptAcquire(0).IsAcquired);
        Assert.Equal(refused, metrics.Value(WouldWait));

        Assert.False(adapter.AttemptAcquire(10).IsAcquired);

        Assert.Equal(refused + 1, metrics.Value(WouldWait));
        Assert.Equal(timeouts + 1, metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
    }

    [Fact]
    public async Task A_partitioned_adapters_refused_attempt_counts_as_turned_away_and_a_probe_does_not()
    {
        var name = $"attempts-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(10), name: name, system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);

        using var held = await HeldAsync(() => adapter.AttemptAcquire("a", 1));
        var (refused, timeouts) = (metrics.Value(WouldWait), metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
        Assert.False(adapter.AttemptAcquire("a", 0).IsAcquired);
        Assert.Equal(refused, metrics.Value(WouldWait));

        Assert.False(adapter.AttemptAcquire("a", 1).IsAcquired);

        Assert.Equal(refused + 1, metrics.Value(WouldWait));
        Assert.Equal(timeouts + 1, metrics.Value(ActorQueueTelemetry.LimiterWaitTimeouts));
    }

    /// <summary>
    /// The one slot, taken by attempts until one is granted (an attempt may say no while the gatekeeper is inside a
    /// message, its first included): the refusals below are then certain, whoever runs when, and counted from here.
    /// </summary>
    private static async Task<System.Threading.RateLimiting.RateLimitLease> HeldAsync(Func<System.Threading.RateLimiting.RateLimitLease> attempt) =>
        await Poll.ValueAsync(() => Task.FromResult(attempt()), lease => lease.IsAcquired, TimeSpan.FromSeconds(10));
}
