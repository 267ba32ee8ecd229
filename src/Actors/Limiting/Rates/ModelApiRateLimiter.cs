using System.Threading.RateLimiting;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="ModelApiLimiter"/> as a <see cref="RateLimiter"/> whose permits are tokens, so ASP.NET Core's
/// rate-limiting middleware and Polly's <c>AddRateLimiter</c> drive the same gatekeeper as every other caller.
/// </summary>
/// <remarks>
/// <para>It claims from the limiter's loan (<see cref="RateLoan"/>), lent from the limiter's construction on: while nobody waits, the slots, requests and
/// tokens it could grant now until the rates' current step ends. <see cref="RateLimiter.AttemptAcquire"/> claims a
/// slot, a request and <c>permitCount</c> tokens from that loan with one compare-and-swap and never blocks; it fails
/// when the loan does not cover them (someone waits, the rates are spent, or the gatekeeper is inside a message or has
/// not renewed the loan since the step ended; a claimer that finds the loan out of date asks it once to renew); when the
/// rates are what the loan is short of, its lease's <see cref="MetadataName.RetryAfter"/> is when they next give
/// something back, counting what the loan took (<see cref="RateLoan.RetryAfter"/>); while someone waits, when a call
/// of its tokens queued behind them could be served, as the gatekeeper published it (<see cref="RateLoan.QueueRetryAfter"/>). A
/// loan holds up to <see cref="RateLoan.MaxTokens"/> (<see cref="int.MaxValue"/>) tokens, so no permit count is beyond it.</para>
/// <para><see cref="RateLimiter.AcquireAsync"/> claims from the loan too, and otherwise takes them together in the
/// gatekeeper's queue; a full queue or a wait timeout gives a failed lease with a reason phrase and, when a rate
/// decides, <see cref="MetadataName.RetryAfter"/>: when the refill comes that serves it after the demand queued
/// ahead. Cancellation throws.</para>
/// <para>The adapter does not own the limiter: disposing it leaves the limiter running.</para>
/// </remarks>
internal sealed class ModelApiRateLimiter : RateLimiter
{
    private const string Source = "rate-limiter";

    private readonly ModelApiLimiter _limiter;

    /// <summary>The gatekeeper's loan.</summary>
    private readonly RateLoan _loan;

    /// <summary>Where a claimed call's slot goes back.</summary>
    private readonly LoanReleaser _releaser;

    /// <summary>Leases granted; striped, since the claim path is otherwise down to a compare-and-swap.</summary>
    private readonly StripedCount _successful = new();

    private long _failed;

    public ModelApiRateLimiter(ModelApiLimiter limiter, RateLoan loan, LoanReleaser releaser)
    {
        _limiter = limiter;
        _loan = loan;
        _releaser = releaser;
    }

    /// <inheritdoc />
    /// <remarks>Never idle: a spent bucket with no holder still limits, so nothing may drop and remake it.</remarks>
    public override TimeSpan? IdleDuration => null;

    /// <inheritdoc />
    /// <remarks>
    /// The available permits are the tokens <see cref="RateLimiter.AttemptAcquire"/> could take now: those lent, while
    /// a slot and a request are lent with them (0 while someone waits, the rates are spent or the loan is being renewed).
    /// A read that finds the loan out of date asks the gatekeeper to lend again, so a refill shows without a call.
    /// The queued count is in permits too, as <see cref="RateLimiterStatistics"/> counts it: the tokens the waiting
    /// calls asked for, summed (one call waiting for 300 tokens is 300), not the number of calls.
    /// </remarks>
    public override RateLimiterStatistics GetStatistics()
    {
        var available = _loan.AvailableTokens;
        if (available == 0)
        {
            // A loan out of date (its step ended: the rates may have refilled since) reads 0 until the gatekeeper lends
            // again, which only a call made it do: ask it, once per loan, as a claim that found it so does.
            AskRenewalIfDue();
        }

        return new()
        {
            CurrentAvailablePermits = available,
            CurrentQueuedCount = _limiter.QueuedTokens,
            TotalSuccessfulLeases = _successful.Read(),
            TotalFailedLeases = Interlocked.Read(ref _failed),
        };
    }

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        CheckPermits(permitCount);
        _limiter.ThrowIfDisposed();
        if (permitCount == 0)
        {
            // RateLimiter's probe: would a call be granted now? Counted either way, as a failed probe is.
            if (_loan.Covers(1))
            {
                _successful.Increment();
                return RateLease.Probe;
            }

            return Refused(1);
        }

        if (_loan.TryClaim(permitCount))
        {
            _successful.Increment();
            _limiter.Claims.ClaimedWithoutWait(1);
            return new LoanRateLease(_releaser);
        }

        _limiter.Claims.RefusedAttempt(); // a call turned away, not a probe's question
        return Refused(permitCount);
    }

    /// <inheritdoc />
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        CheckPermits(permitCount);
        if (permitCount == 0)
        {
            // RateLimiter's contract: a zero-permit acquire waits until a call would be granted, and takes nothing.
            _limiter.ThrowIfDisposed();
            if (_loan.Covers(1))
            {
                _successful.Increment();
                return new(RateLease.Probe);
            }

            return AcquireFromGatekeeperAsync(1, cancellationToken, probe: true);
        }

        // Disposed: the gatekeeper path throws ObjectDisposedException, before any claim.
        if (!cancellationToken.IsCancellationRequested && !_limiter.IsDisposed && _loan.TryClaim(permitCount))
        {
            _successful.Increment();
            _limiter.Claims.ClaimedWithoutWait(1);
            return new(new LoanRateLease(_releaser));
        }

        return AcquireFromGatekeeperAsync(permitCount, cancellationToken);
    }

    /// <summary>
    /// A call the loan did not cover waits in the gatekeeper's line; a <paramref name="probe"/> (a zero-permit acquire,
    /// one call of one token) takes nothing once its turn comes (<see cref="AcquireRequest.IsProbe"/>), so its grant's
    /// lease is not kept. Refused, timed out or failed by the limiter's disposal while it waited, either gets a failed
    /// lease, as RateLimiting's own limiters fail their waiters (a call made once the limiter is disposed throws).
    /// </summary>
    private async ValueTask<RateLimitLease> AcquireFromGatekeeperAsync(int permitCount, CancellationToken cancellationToken, bool probe = false)
    {
        var timeout = _limiter.Check(permitCount, waitTimeout: null, Source, nameof(permitCount));
        cancellationToken.ThrowIfCancellationRequested();
        var request = _limiter.Request(permitCount, priority: 0, timeout, Source, probe);
        try
        {
            var slot = await _limiter.Send(request, cancellationToken).ConfigureAwait(false);
            _successful.Increment();
            return probe ? RateLease.Probe : new RateLease(ModelApiLimiter.LeaseOf(request, slot, _limiter.Name, _limiter.Settler));
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failed);
            return RateLease.Failed(error.Message, request.RetryAfter);
        }
    }

    /// <summary>
    /// A synchronous attempt for <paramref name="tokens"/> the loan did not cover; asks the gatekeeper to renew a loan
    /// that is out of date, and says when to retry when the rates are spent (their next gain with the loan taken, as the gatekeeper lent it).
    /// </summary>
    private RateLease Refused(long tokens)
    {
        // Read before the renewal is asked: the gatekeeper shuts the loan as it renews it, and a shut loan says nothing.
        var retryAfter = _loan.RetryAfter(tokens) ?? _loan.QueueRetryAfter(tokens);
        AskRenewalIfDue(refusal: true);
        Interlocked.Increment(ref _failed);
        return RateLease.Failed($"{_limiter.Name ?? "The model API limiter"} has nothing lent for a call that would not wait now (someone waits, the rates are spent, or the loan is being renewed); AcquireAsync waits for it", retryAfter);
    }

    /// <summary>
    /// Asks the gatekeeper for a message when the loan is out of date, so that it lends anew (<see cref="RateLoan.ShouldAskRenewal"/>:
    /// once per loan), or, for a <paramref name="refusal"/> while someone waits, when the table it read its <c>RetryAfter</c>
    /// from is stale, so that it builds a fresh one (<see cref="RateLoan.ShouldAskQueueRetry"/>: once per build).
    /// </summary>
    private void AskRenewalIfDue(bool refusal = false)
    {
        if (_loan.ShouldAskRenewal() || (refusal && _loan.ShouldAskQueueRetry()))
        {
            _limiter.Gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
        }
    }

    private void CheckPermits(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitCount);
        if (permitCount > 0)
        {
            LimitValidation.EstimatedTokens(permitCount, _limiter.Options.TokensPerPeriod, _limiter.Name, nameof(permitCount));
        }
    }
}

/// <summary>
/// A <see cref="RateLimitLease"/> over a <see cref="ModelApiLease"/> (disposing it frees the slot in flight), or a
/// failed one that says why in <see cref="MetadataName.ReasonPhrase"/> and, when a rate knows, when to retry in
/// <see cref="MetadataName.RetryAfter"/>.
/// </summary>
internal sealed class RateLease : RateLimitLease
{
    /// <summary>An acquired lease that holds nothing: the answer to a zero-permit probe.</summary>
    public static readonly RateLease Probe = new(null, null, null);

    private readonly ModelApiLease? _lease;
    private readonly string? _reason;
    private readonly TimeSpan? _retryAfter;

    public RateLease(ModelApiLease lease)
        : this(lease, null, null)
    {
    }

    private RateLease(ModelApiLease? lease, string? reason, TimeSpan? retryAfter)
    {
        _lease = lease;
        _reason = reason;
        _retryAfter = retryAfter;
    }

    /// <inheritdoc />
    public override bool IsAcquired => _reason is null;

    /// <inheritdoc />
    public override IEnumerable<string> MetadataNames
    {
        get
        {
            if (_reason is not null)
            {
                yield return MetadataName.ReasonPhrase.Name;
            }

            if (_retryAfter is not null)
            {
                yield return MetadataName.RetryAfter.Name;
            }
        }
    }

    /// <summary>A lease that was not acquired, for <paramref name="reason"/>, retryable after <paramref name="retryAfter"/> if known.</summary>
    public static RateLease Failed(string reason, TimeSpan? retryAfter) => new(null, reason, retryAfter);

    /// <inheritdoc />
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = metadataName == MetadataName.ReasonPhrase.Name ? _reason
                 : metadataName == MetadataName.RetryAfter.Name ? _retryAfter
                 : null;
        return metadata is not null;
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
