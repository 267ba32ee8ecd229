using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>The limiters, idle timeout and lease reason the reviews of the partitioned adapters' AttemptAcquire share.</summary>
public abstract class PartitionAttemptReviewBase : ActorQueueTestKit
{
    private protected static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private protected static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private protected readonly FakeTimeProvider _clock = new();

    private protected PartitionedConcurrencyLimiter<string> Concurrency(int maxRunning, int? maxQueued = null) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, TimeProvider = _clock }, IdleTimeout, "attempt-keys", system: Sys);

    private protected PartitionedModelApiLimiter<string> ModelApi(int concurrent = 2, int requests = 500, long tokens = 1000, int? maxQueued = null) =>
        new(new ModelApiLimiterOptions(concurrent, requests, tokens, Minute) { TimeProvider = _clock, MaxQueued = maxQueued }, IdleTimeout, "attempt-rates", system: Sys);

    private protected static string ReasonOf(RateLimitLease lease) => lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) ? reason! : "(no reason)";
}
