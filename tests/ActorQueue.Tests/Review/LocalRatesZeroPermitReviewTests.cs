using ActorQueue.Actors;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the local rate limits' RateLimiting adapters: zero-permit acquires and probes (they wait, take nothing, and are counted).</summary>
public sealed class LocalRatesZeroPermitReviewTests : LocalRatesReviewBase
{
    /// <summary>
    /// FINDING. RateLimiter.AcquireAsync(0) must "wait until permits are replenished" (System.Threading.RateLimiting's
    /// contract; the built-in TokenBucketRateLimiter queues a zero-permit request while it has no token). The model-API
    /// adapter answers it at once with an acquired probe lease although the minute's only request is spent, so a
    /// caller that uses AcquireAsync(0) to wait for the refill proceeds immediately. Repro: 1 request/min, take it,
    /// AcquireAsync(0) is already completed and acquired. Expected: pending until the refill, then acquired.
    /// Location: src/Actors/Limiting/Rates/ModelApiRateLimiter.cs AcquireAsyncCore (permitCount == 0 returns
    /// RateLease.Probe unconditionally); the same in PartitionedLimiterAdapter.AcquireAsyncCore and
    /// ConcurrencyRateLimiter.AcquireAsyncCore (an attempt, never a wait).
    /// Mended for the model-API adapter: a zero-permit acquire the loan does not cover waits in the gatekeeper's line as
    /// a call of one token that takes nothing when its turn comes (<c>AcquireRequest.IsProbe</c>: its grant completes
    /// it and reports the grant lost, so the gate or the loan puts back what it took in the same step); the
    /// concurrency adapter's was mended before; the partitioned adapter's the same way as the model-API one.
    /// </summary>
    [Fact]
    public async Task Adapter_AcquireAsync_of_zero_permits_waits_for_the_refill_of_spent_rates()
    {
        using var limiter = Limiter(requests: 1);
        var adapter = limiter.AsRateLimiter();
        using var first = await Within(adapter.AcquireAsync(1).AsTask());
        Assert.True(first.IsAcquired);

        var zero = adapter.AcquireAsync(0);

        Assert.False(zero.IsCompleted, "AcquireAsync(0) granted at once although the minute's only request is spent");
        _clock.Advance(Minute);
        using var lease = await Within(zero.AsTask());
        Assert.True(lease.IsAcquired);
        using var call = await Within(adapter.AcquireAsync(1).AsTask()); // the wait took nothing: the refill's request is there
        Assert.True(call.IsAcquired);
    }

    /// <summary>
    /// A zero-permit acquire waits in line: a call queued before it is served first, and it completes only when a call
    /// would be granted after that one (as RateLimiting's limiters queue it). Mended with the finding above: it waits as
    /// a call that takes nothing when its turn comes (<c>AcquireRequest.IsProbe</c>).
    /// </summary>
    [Fact]
    public async Task Adapter_AcquireAsync_of_zero_permits_waits_behind_the_calls_queued_before_it_and_takes_nothing()
    {
        using var limiter = Limiter(requests: 1);
        var adapter = limiter.AsRateLimiter();
        using var first = await Within(adapter.AcquireAsync(1).AsTask());
        var queued = adapter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "a call waits for the next minute");
        var zero = adapter.AcquireAsync(0).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "the zero-permit acquire waits behind it");

        _clock.Advance(Minute);
        using var second = await Within(queued);

        Assert.True(second.IsAcquired);
        await Eventually(() => limiter.WaitingCount == 1, "the minute's request went to the call queued first; the zero-permit acquire still waits");
        Assert.False(zero.IsCompleted);
        _clock.Advance(Minute);
        using var probe = await Within(zero);
        Assert.True(probe.IsAcquired);
        using var third = await Within(adapter.AcquireAsync(1).AsTask()); // the probe took nothing of the new minute
        Assert.True(third.IsAcquired);
        Assert.Equal(0, limiter.WaitingCount);
    }

    /// <summary>
    /// FINDING. After the limiter is disposed the adapter's AcquireAsync(0) still returns an acquired lease, while
    /// AttemptAcquire(0) and AcquireAsync(1) throw ObjectDisposedException (README: "every later call" gets it).
    /// Repro: dispose the limiter, await adapter.AcquireAsync(0). Expected: ObjectDisposedException.
    /// Location: ModelApiRateLimiter.AcquireAsyncCore returns RateLease.Probe before any disposal check.
    /// </summary>
    [Fact]
    public async Task Adapter_AcquireAsync_of_zero_permits_on_a_disposed_limiter_throws()
    {
        var limiter = Limiter();
        var adapter = limiter.AsRateLimiter();
        await Within(limiter.DisposeAsync().AsTask());

        Assert.Throws<ObjectDisposedException>(() => adapter.AttemptAcquire(0));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await adapter.AcquireAsync(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => (await adapter.AcquireAsync(0)).Dispose());
    }

    /// <summary>
    /// FINDING. A zero-permit probe that succeeds is not counted in TotalSuccessfulLeases, while one that fails is
    /// counted in TotalFailedLeases (ModelApiRateLimiter.Refused increments _failed); RateLimiting's own limiters
    /// count both. Repro: probe with AttemptAcquire(0) until it is acquired, then read the statistics: 0 successful.
    /// Location: ModelApiRateLimiter.AttemptAcquireCore, permitCount == 0 branch. Fix: count the probe either way
    /// (or neither way) consistently.
    /// </summary>
    [Fact]
    public async Task A_successful_zero_permit_probe_is_counted_like_a_failed_one()
    {
        using var limiter = Limiter();
        var adapter = limiter.AsRateLimiter();
        var failures = 0L;
        await Eventually(() =>
        {
            using var probe = adapter.AttemptAcquire(0);
            failures += probe.IsAcquired ? 0 : 1;
            return probe.IsAcquired;
        }, "the gatekeeper lends");

        var statistics = adapter.GetStatistics()!;
        Assert.Equal(failures, statistics.TotalFailedLeases);
        Assert.Equal(1, statistics.TotalSuccessfulLeases);
    }

    /// <summary>
    /// The partitioned adapter's <c>AcquireAsync(resource, 0)</c> waits, as RateLimiting's contract has it, until a call
    /// of that key would be granted, and takes nothing: a partitioned model-API limiter's key whose minute's only
    /// request is spent waits for the refill, and the refill's request is still there afterwards; another key answers at
    /// once. Failed before: it answered at once with an acquired probe lease.
    /// </summary>
    [Fact]
    public async Task Partitioned_adapter_AcquireAsync_of_zero_permits_waits_for_its_keys_refill_and_takes_nothing()
    {
        await using var limiter = Partitioned(requests: 1);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        using var first = await Within(adapter.AcquireAsync("a", 10).AsTask());
        Assert.True(first.IsAcquired);

        var zero = adapter.AcquireAsync("a", 0).AsTask();
        using var other = await Within(adapter.AcquireAsync("b", 0).AsTask());

        Assert.True(other.IsAcquired);
        Assert.False(zero.IsCompleted, "AcquireAsync(a, 0) granted at once although a's only request of the minute is spent");
        _clock.Advance(Minute);
        using var probe = await Within(zero);
        Assert.True(probe.IsAcquired);
        using var call = await Within(adapter.AcquireAsync("a", 10).AsTask()); // the wait took nothing of the new minute
        Assert.True(call.IsAcquired);
    }

    /// <summary>
    /// The same for a partitioned concurrency limiter: <c>AcquireAsync(resource, 0)</c> on a key whose permits are all
    /// held waits until one is free and holds nothing afterwards. Failed before: it answered at once.
    /// </summary>
    [Fact]
    public async Task Partitioned_concurrency_adapter_AcquireAsync_of_zero_permits_waits_for_a_free_permit_of_its_key()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), Minute, "review-zero-partitions", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var held = await Within(adapter.AcquireAsync("a", 1).AsTask());
        Assert.True(held.IsAcquired);

        var zero = adapter.AcquireAsync("a", 0).AsTask();
        await Eventually(() => zero.IsCompleted || adapter.GetStatistics("a")!.CurrentQueuedCount == 1, "the zero-permit acquire was handled");

        Assert.False(zero.IsCompleted, "AcquireAsync(a, 0) granted at once although a's only permit is held");
        held.Dispose();
        using var probe = await Within(zero);
        Assert.True(probe.IsAcquired);
        using var lease = await Within(adapter.AcquireAsync("a", 1).AsTask()); // the wait holds nothing
        Assert.True(lease.IsAcquired);
    }

    /// <summary>
    /// FINDING. The ConcurrencyLimiter's RateLimiter adapter answers AcquireAsync(0) with an attempt: on a limiter
    /// whose permits are all held it completes at once with a failed lease, where RateLimiter's contract is to wait
    /// until a permit is available (RateLimiting's ConcurrencyLimiter queues it). Repro: 1 permit held,
    /// AcquireAsync(0) is already completed. Location: src/Actors/Limiting/RateLimiting/ConcurrencyRateLimiter.cs
    /// AcquireAsyncCore (permitCount == 0 returns AttemptAcquireCore(0)).
    /// </summary>
    [Fact]
    public async Task Concurrency_adapter_AcquireAsync_of_zero_permits_waits_for_a_free_permit()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "review-concurrency", system: Sys);
        var adapter = limiter.AsRateLimiter();
        var held = await Within(adapter.AcquireAsync(1).AsTask());
        Assert.True(held.IsAcquired);

        var zero = adapter.AcquireAsync(0);

        Assert.False(zero.IsCompleted, "AcquireAsync(0) answered at once although the only permit is held");
        held.Dispose();
        using var lease = await Within(zero.AsTask());
        Assert.True(lease.IsAcquired);
    }
}
