using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A <c>using</c> over a <see cref="ConcurrencyLease"/> calls <see cref="IDisposable.Dispose"/>: the lease implements it
/// itself, so the release skips <see cref="System.Threading.RateLimiting.RateLimitLease.Dispose()"/>'s finaliser
/// bookkeeping (<see cref="GC.SuppressFinalize"/>, for a lease without a finaliser) and the framework method every
/// library's leases share (BENCHMARKS round 43).
/// </summary>
public class LeaseDisposeRound43Tests : ActorQueueTestKit
{
    /// <summary>
    /// Failed before: <see cref="IDisposable.Dispose"/> was <c>RateLimitLease.Dispose()</c> ("Expected: ConcurrencyLease,
    /// Actual: RateLimitLease"): the lease's own <c>Dispose</c>, declared <c>new</c> for exactly this, was reached only by a
    /// direct call, never by a <c>using</c>.
    /// </summary>
    [Fact]
    public void A_using_reaches_the_leases_own_Dispose()
    {
        var map = typeof(ConcurrencyLease).GetInterfaceMap(typeof(IDisposable));

        var dispose = Assert.Single(map.TargetMethods);
        Assert.Equal(typeof(ConcurrencyLease), dispose.DeclaringType);
    }

    /// <summary>Disposed through <see cref="IDisposable"/>, twice, the lease gives its permit back once (a release that ran twice would free a second permit).</summary>
    [Fact]
    public async Task Disposing_through_IDisposable_twice_gives_the_permit_back_once()
    {
        await using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var first = await limiter.AcquireAsync();
        var second = await limiter.AcquireAsync();

        using (first)
        {
        }

        ((IDisposable)first).Dispose();

        Assert.True(first.IsReleased);
        var third = await Within(limiter.AcquireAsync().AsTask());
        var fourth = limiter.AcquireAsync();
        Assert.False(fourth.IsCompleted, "two permits are held (the second lease and the third): a double release would have freed another");
        second.Dispose();
        (await Within(fourth.AsTask())).Dispose();
        third.Dispose();
    }
}
