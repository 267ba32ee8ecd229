using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>The limiters, clock and period the local rate limit reviews share.</summary>
public abstract class LocalRatesReviewBase : ActorQueueTestKit
{
    private protected static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private protected readonly FakeTimeProvider _clock = new();

    private protected ModelApiLimiter Limiter(int requests = 500, long tokens = 1000, int? maxQueued = null, int concurrent = 8, int? segments = null) =>
        new(new ModelApiLimiterOptions(concurrent, requests, tokens, Minute) { TimeProvider = _clock, MaxQueued = maxQueued, SlidingWindowSegments = segments }, "review-rates", system: Sys);

    private protected PartitionedModelApiLimiter<string> Partitioned(int requests = 500, long tokens = 1000, int? maxQueued = null) =>
        new(new ModelApiLimiterOptions(2, requests, tokens, Minute) { TimeProvider = _clock, MaxQueued = maxQueued }, TimeSpan.FromMinutes(5), "review-keys", system: Sys);
}
