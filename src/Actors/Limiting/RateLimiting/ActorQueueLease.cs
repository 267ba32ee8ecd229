using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// The <see cref="RateLimitLease"/>s of the concurrency adapters that hold no permits: a failed one that says why in
/// <see cref="MetadataName.ReasonPhrase"/>, or the acquired <see cref="Probe"/>. A granted lease is the
/// <see cref="ConcurrencyLease"/> itself. A concurrency limit has no <see cref="MetadataName.RetryAfter"/>: when a
/// permit frees depends on the holders, not on a clock, so the adapters never invent one (the rates do).
/// </summary>
internal sealed class ActorQueueLease : RateLimitLease
{
    /// <summary>An acquired lease that holds nothing: the answer to a zero-permit probe that would succeed.</summary>
    public static readonly ActorQueueLease Probe = new(null);

    private static readonly string[] ReasonOnly = [MetadataName.ReasonPhrase.Name];

    /// <summary>Why it failed; <c>null</c> for the probe.</summary>
    private readonly string? _reason;

    private ActorQueueLease(string? reason) => _reason = reason;

    /// <inheritdoc />
    public override bool IsAcquired => _reason is null;

    /// <inheritdoc />
    public override IEnumerable<string> MetadataNames => _reason is null ? [] : ReasonOnly;

    /// <summary>A lease that was not acquired, for <paramref name="reason"/>.</summary>
    public static ActorQueueLease Failed(string reason) => new(reason);

    /// <inheritdoc />
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        if (_reason is not null && metadataName == MetadataName.ReasonPhrase.Name)
        {
            metadata = _reason;
            return true;
        }

        metadata = null;
        return false;
    }
}

/// <summary>The reason phrases of failed leases.</summary>
internal static class Reasons
{
    public static string NothingLent(IConcurrencyLimiter limiter) =>
        $"No permit of {limiter.Name ?? "the limiter"} is free for a caller that will not wait ({limiter.WaitingCount} waiting); use AcquireAsync to queue";
}
