namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's message protocol for callers that are actors. Send with <c>Tell</c> from the actor that will hold
/// the lease: the reply goes to the sender, and the sender is the holder. The gatekeeper watches every actor that waits
/// or holds a lease: when it stops, its waits are withdrawn and its leases released — so an <see cref="Acquire"/> sent
/// with <c>Ask</c>, whose temporary actor stops at the first reply, is answered <see cref="Rejected"/>
/// (<see cref="RejectionReason.InvalidRequest"/>). <c>Ask</c> suits <see cref="GetStatus"/>; async code uses the
/// facade's <c>AcquireAsync</c>.
/// </summary>
/// <example>
/// <code>
/// limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("crawler", requestId: 1), Self);
/// Receive&lt;GatekeeperProtocol.Granted&gt;(g =&gt; { DoWork(); limiter.Gatekeeper.Tell(new GatekeeperProtocol.Release(g.LeaseId)); });
/// </code>
/// </example>
public static class GatekeeperProtocol
{
    /// <summary>
    /// Asks for <see cref="Permits"/> permits. The reply is <see cref="Granted"/>; or <see cref="Queued"/> first (unless
    /// <see cref="ReplyQueued"/> is <c>false</c>) and <see cref="Granted"/> later; or <see cref="Rejected"/> (its
    /// <see cref="Rejected.Kind"/> says why: a full queue, an eviction, the wait timeout, more permits than there are).
    /// A request id may be reused once its request has ended.
    /// </summary>
    /// <param name="Source">Who asks; shows in rejection reasons.</param>
    /// <param name="RequestId">The caller's number for this request, echoed in every reply.</param>
    public sealed record Acquire(string Source, long RequestId)
    {
        /// <summary>How many permits (its weight); at least 1 and at most <c>max_running</c>.</summary>
        public int Permits { get; init; } = 1;

        /// <summary>Higher is served first; FIFO within one priority.</summary>
        public int Priority { get; init; }

        /// <summary>How long it may wait: <c>null</c> for the limiter's default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</summary>
        public TimeSpan? WaitTimeout { get; init; }

        /// <summary>
        /// The tokens the call is expected to use, for a limiter with a token rate (a model-API limiter); 0 or more, and
        /// at most its tokens per period. Other limiters ignore it. Report the real count with <see cref="Settle"/>.
        /// </summary>
        public long Tokens { get; init; }

        /// <summary>
        /// Whether a request that has to wait is told so with <see cref="Queued"/> before its <see cref="Granted"/>
        /// (the default). <c>false</c> for a caller that has no use for <see cref="Queued"/>: it then hears only
        /// <see cref="Granted"/> or <see cref="Rejected"/>, and saves a message to its mailbox per wait.
        /// </summary>
        public bool ReplyQueued { get; init; } = true;
    }

    /// <summary>Permits are now held by the requesting actor; give them back with <see cref="Release"/>.</summary>
    /// <param name="RequestId">The request this answers.</param>
    /// <param name="LeaseId">The lease to release.</param>
    public sealed record Granted(long RequestId, long LeaseId)
    {
        /// <summary>How many permits the lease holds.</summary>
        public int Permits { get; init; } = 1;
    }

    /// <summary>No slot was free: the request waits in FIFO order; <see cref="Granted"/> follows.</summary>
    /// <param name="RequestId">The request this answers.</param>
    /// <param name="WaitingCount">How many wait now, this request included.</param>
    public sealed record Queued(long RequestId, int WaitingCount);

    /// <summary>The request was turned away: the wait queue is full, the request id is in use, or the limiter is disposed.</summary>
    /// <param name="RequestId">The request this answers.</param>
    /// <param name="Reason">Why; for a full queue the same text as <see cref="ConcurrencyLimitExceededException"/>.</param>
    public sealed record Rejected(long RequestId, string Reason)
    {
        /// <summary>Why, as a value to switch on.</summary>
        public RejectionReason Kind { get; init; }
    }

    /// <summary>
    /// Sets the limits while the limiter runs; <c>null</c> leaves a value unchanged. No reply. Growing grants to the
    /// waiters that fit at once; shrinking revokes nothing held (new grants wait until enough come back) and fails
    /// waiters that ask more than the new <c>max_running</c> (<see cref="RejectionReason.ExceedsLimit"/>); a smaller
    /// <c>max_queued</c> only turns newcomers away. Invalid values are logged and ignored.
    /// </summary>
    /// <param name="MaxRunning">The new number of permits (at least 1), or <c>null</c>.</param>
    /// <param name="MaxQueued">The new bound on waiters (at least 0), or <c>null</c>.</param>
    public sealed record Resize(int? MaxRunning, int? MaxQueued);

    /// <summary>Gives a slot back. No reply; an unknown lease id is logged and ignored.</summary>
    /// <param name="LeaseId">The lease from <see cref="Granted"/>.</param>
    public sealed record Release(long LeaseId);

    /// <summary>
    /// <see cref="Release"/> of <see cref="LeaseId"/> and then <see cref="Next"/>, in one message, for an actor that gives
    /// a lease back and asks again at once. The released permits go first to whoever waits, in order; then
    /// <see cref="Next"/> is answered exactly as an <see cref="Acquire"/> sent on its own (it may reuse the released
    /// lease's request id). An unknown lease id is logged and ignored, and <see cref="Next"/> still goes ahead.
    /// </summary>
    /// <param name="LeaseId">The lease from <see cref="Granted"/>.</param>
    /// <param name="Next">The request that follows the release.</param>
    public sealed record ReleaseAndAcquire(long LeaseId, Acquire Next);

    /// <summary>
    /// Reports the tokens a granted call really used, once, before its <see cref="Release"/>: a token bucket gets the
    /// unused part of <see cref="Acquire.Tokens"/> back at once, or owes the excess to its next refills (as
    /// <c>ModelApiLease.Settle</c>). The reply, to the holder, is <see cref="Settled"/>, or a
    /// <see cref="Akka.Actor.Status.Failure"/>: <see cref="ArgumentOutOfRangeException"/> for negative tokens,
    /// <see cref="InvalidOperationException"/> for a lease settled already, released already or never granted to the sender.
    /// </summary>
    /// <param name="LeaseId">The lease from <see cref="Granted"/>.</param>
    /// <param name="ActualTokens">The tokens the call used; 0 or more.</param>
    public sealed record Settle(long LeaseId, long ActualTokens);

    /// <summary>The settle was taken: the limiter's rates count <see cref="ActualTokens"/> for the lease.</summary>
    /// <param name="LeaseId">The lease settled.</param>
    /// <param name="ActualTokens">The tokens reported.</param>
    public sealed record Settled(long LeaseId, long ActualTokens);

    /// <summary>
    /// Withdraws a request. A waiting request is removed and answered with <see cref="Cancelled"/>. A request that
    /// was already granted gets no reply: the gatekeeper releases its lease itself, and the caller ignores the
    /// <see cref="Granted"/> that may still arrive for it.
    /// </summary>
    /// <param name="RequestId">The request to withdraw.</param>
    public sealed record CancelAcquire(long RequestId);

    /// <summary>The waiting request was withdrawn; it holds nothing.</summary>
    /// <param name="RequestId">The request withdrawn.</param>
    public sealed record Cancelled(long RequestId);

    /// <summary>Asks for the gatekeeper's counts; the reply is <see cref="Status"/>.</summary>
    public sealed record GetStatus
    {
        /// <summary>The one instance.</summary>
        public static GetStatus Instance { get; } = new();
    }

    /// <summary>The gatekeeper's counts.</summary>
    /// <param name="Running">Slots held now.</param>
    /// <param name="Waiting">Requests waiting now.</param>
    /// <param name="MaxRunning">How many slots there are.</param>
    /// <param name="MaxQueued">How many may wait; <c>null</c> for no bound.</param>
    /// <param name="Name">The limiter's name.</param>
    public sealed record Status(int Running, int Waiting, int MaxRunning, int? MaxQueued, string? Name);
}
