using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="RateLimitLease"/> over a <see cref="ConcurrencyLease"/> (disposing it gives the permits back), or a
/// failed one that says why in <see cref="MetadataName.ReasonPhrase"/>. A concurrency limit has no
/// <see cref="MetadataName.RetryAfter"/>: when a permit frees depends on the holders, not on a clock, so the adapters
/// never invent one (the time-based policies of a later issue will).
/// </summary>
internal sealed class ActorQueueLease : RateLimitLease
{
    /// <summary>An acquired lease that holds nothing: the answer to a zero-permit probe that would succeed.</summary>
    public static readonly ActorQueueLease Probe = new(null, null);

    private static readonly string[] ReasonOnly = [MetadataName.ReasonPhrase.Name];

    /// <summary>The permits held; <c>null</c> for a failed lease or a probe.</summary>
    private readonly ConcurrencyLease? _lease;

    /// <summary>Why it failed; <c>null</c> when acquired.</summary>
    private readonly string? _reason;

    public ActorQueueLease(ConcurrencyLease lease)
        : this(lease, null)
    {
    }

    private ActorQueueLease(ConcurrencyLease? lease, string? reason)
    {
        _lease = lease;
        _reason = reason;
    }

    /// <inheritdoc />
    public override bool IsAcquired => _reason is null;

    /// <inheritdoc />
    public override IEnumerable<string> MetadataNames => _reason is null ? [] : ReasonOnly;

    /// <summary>A lease that was not acquired, for <paramref name="reason"/>.</summary>
    public static ActorQueueLease Failed(string reason) => new(null, reason);

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

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _lease?.Dispose();
        }
    }
}

/// <summary>The reason phrases of failed leases.</summary>
internal static class Reasons
{
    public static string NothingLent(IConcurrencyLimiter limiter) =>
        $"No permit of {limiter.Name ?? "the limiter"} is free for a caller that will not wait ({limiter.WaitingCount} waiting); use AcquireAsync to queue";
}
