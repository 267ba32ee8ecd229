using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The rate loan across the gatekeeper's life: nothing is lent once the limiter is disposed.</summary>
public sealed class RateLoanLifecycleTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter() =>
        new(new ModelApiLimiterOptions(4, 500, 1000, TimeSpan.FromMinutes(1)) { TimeProvider = _clock, MaxQueued = 0 }, "model-api-lifecycle", system: Sys);

    private static async Task<RateLimiter> Lending(ModelApiLimiter limiter)
    {
        var adapter = limiter.AsRateLimiter();
        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the gatekeeper lends");
        return adapter;
    }

    [Fact]
    public async Task The_adapter_grants_nothing_once_the_limiter_is_disposed()
    {
        var limiter = Limiter();
        var adapter = await Lending(limiter);

        limiter.Dispose();

        // The gatekeeper may not have handled the dispose yet: the loan it lent is closed by the limiter itself.
        Assert.False(limiter.Loan.IsOpen);
        Assert.Throws<ObjectDisposedException>(() => adapter.AttemptAcquire(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await adapter.AcquireAsync(1));
    }
}
