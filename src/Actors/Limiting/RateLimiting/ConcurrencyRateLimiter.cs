using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="ConcurrencyLimiter"/> as a <see cref="RateLimiter"/>, so ASP.NET Core's rate-limiting middleware,
/// Polly's <c>AddRateLimiter</c> and <c>HttpClient</c> handlers drive the same gatekeeper as every other caller.
/// </summary>
/// <remarks>
/// <para><see cref="RateLimiter.AcquireAsync"/> waits in the gatekeeper's queue (FIFO, no barging, the limiter's wait
/// timeout); a full queue, an eviction, a timeout or the limiter's disposal while it waits gives a failed lease with a
/// reason phrase instead of an exception, as <see cref="RateLimiter"/> callers expect. Cancellation throws, and so does
/// a call made once the limiter is disposed (<see cref="ObjectDisposedException"/>).</para>
/// <para><see cref="RateLimiter.AttemptAcquire"/> never blocks a thread: it claims permits the gatekeeper lent while
/// nobody waited (<see cref="PermitLoan"/>), with one compare-and-swap; a limiter lends every permit from its
/// construction, before its gatekeeper has started. It can fail while a permit is free when a release is still in the
/// gatekeeper's mailbox, or while someone waits.</para>
/// <para>The adapter does not own the limiter: disposing it leaves the limiter running.</para>
/// </remarks>
internal sealed class ConcurrencyRateLimiter : RateLimiter
{
    private readonly ConcurrencyLimiter _limiter;

    /// <summary>The gatekeeper's loan of free permits for synchronous acquires.</summary>
    private readonly PermitLoan _loan;

    /// <summary>Claims leases from the loan; their permits go back into it, or by message when it is shut.</summary>
    private readonly PermitLoanReleaser _leases;

    /// <summary>The leases handed out.</summary>
    private readonly LeaseTally _tally = new();

    private readonly IdleClock _idle = new();

    public ConcurrencyRateLimiter(ConcurrencyLimiter limiter, PermitLoan loan, PermitLoanReleaser leases)
    {
        _limiter = limiter;
        _loan = loan;
        _leases = leases;
    }

    /// <inheritdoc />
    /// <remarks>
    /// <c>null</c> while anyone holds or waits for a permit, however they came (this adapter, the limiter's own
    /// <c>AcquireAsync</c>, an actor through <see cref="GatekeeperProtocol"/>); else timed from the first read that found
    /// the limiter idle after its last grant to any of them (<see cref="ConcurrencyLimiter.LeasesGranted"/>), so a lease
    /// taken and given back between two reads restarts it. A request still in the gatekeeper's mailbox is not seen until
    /// the gatekeeper handles it.
    /// </remarks>
    public override TimeSpan? IdleDuration
    {
        get
        {
            // The grants first: a lease granted after this read and held at the counts' read shows as busy.
            var granted = _limiter.LeasesGranted;
            return _idle.Read(_limiter.RunningCount == 0 && _limiter.WaitingCount == 0, granted);
        }
    }

    /// <inheritdoc />
    /// <remarks>The queued count is in permits, as <see cref="RateLimiterStatistics"/> counts it: a caller waiting for 3 permits is 3.</remarks>
    public override RateLimiterStatistics GetStatistics() => _tally.Statistics(_limiter.AvailableCount, _limiter.QueuedPermits);

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        CheckPermits(permitCount);
        _limiter.ThrowIfDisposed();
        if (permitCount == 0)
        {
            // RateLimiter's probe: would one permit be granted now?
            return Count(_loan.Unclaimed > 0 ? ActorQueueLease.Probe : ActorQueueLease.Failed(Reasons.NothingLent(_limiter)));
        }

        if (_leases.TryClaim(permitCount, "rate-limiter") is { } lease)
        {
            return Count(lease);
        }

        _leases.Refused();
        return Count(ActorQueueLease.Failed(Reasons.NothingLent(_limiter)));
    }

    /// <inheritdoc />
    /// <remarks>A request of more permits than the limit, and one made once the limiter is disposed, throw from this call, as RateLimiting's own limiters throw them, not from the task it returns.</remarks>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        CheckPermits(permitCount);
        _limiter.ThrowIfDisposed();
        if (permitCount == 0 && _loan.Unclaimed > 0)
        {
            // RateLimiter's probe: a permit is free now.
            return new ValueTask<RateLimitLease>(Count(ActorQueueLease.Probe));
        }

        return WaitAsync(permitCount, cancellationToken);
    }

    /// <summary>Waits in the gatekeeper's queue for <paramref name="permitCount"/> permits (one for a zero-permit probe, handed straight back).</summary>
    private async ValueTask<RateLimitLease> WaitAsync(int permitCount, CancellationToken cancellationToken)
    {
        try
        {
            // A zero-permit acquire waits, as RateLimiter's contract has it, until a permit is free: it waits in the
            // queue for one and hands it straight back, so it passes no waiter and holds nothing once it returns.
            var lease = await _limiter.AcquireAsync(Math.Max(permitCount, 1), source: "rate-limiter", cancellationToken: cancellationToken).ConfigureAwait(false);
            if (permitCount == 0)
            {
                lease.Dispose();
                return Count(ActorQueueLease.Probe);
            }

            return Count(lease);
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException or ObjectDisposedException)
        {
            // A waiter the limiter's disposal failed gets a failed lease, as RateLimiting's own limiters give theirs.
            return Count(ActorQueueLease.Failed(error.Message));
        }
    }

    private void CheckPermits(int permitCount)
    {
        if (permitCount > _limiter.MaxRunning)
        {
            throw LimitValidation.ExceedsLimit(permitCount, _limiter.MaxRunning, _limiter.Name, nameof(permitCount));
        }
    }

    private RateLimitLease Count(RateLimitLease lease) => _tally.Count(lease);
}
