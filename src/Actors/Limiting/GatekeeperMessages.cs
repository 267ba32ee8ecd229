using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// A facade's request for a slot: its own message and its own completion (see <see cref="FacadeWaiter{TResult}"/>).
/// Whoever serves it (the gatekeeper, or a cluster limiter's node agent) stamps <see cref="Releaser"/> on arrival.
/// </summary>
/// <remarks>
/// Its size is what a waiting caller costs (and what every contended acquire allocates), so what most requests do not
/// use — a priority, a trace signal, a retry hint — lives in one <see cref="Uncommon"/> object made only for the
/// requests that need it; the weight is kept as an <see cref="int"/> and the timeout as ticks.
/// </remarks>
internal class AcquireRequest : FacadeWaiter<ConcurrencyLease>, IFacadeOp
{
    /// <summary><see cref="Timeout"/>'s ticks, or this for none (wait for ever).</summary>
    private const long NoTimeout = long.MinValue;

    private readonly int _permits;

    private readonly long _timeoutTicks;

    /// <summary>The parts few requests use; <c>null</c> until one is needed.</summary>
    private Uncommon? _uncommon;

    public AcquireRequest(string source, IActorRef gatekeeper, bool signalQueued)
        : this(source, gatekeeper, signalQueued, permits: 1, priority: 0, timeout: null)
    {
    }

    /// <param name="source">Who asks.</param>
    /// <param name="gatekeeper">The actor that serves it, told when the caller cancels.</param>
    /// <param name="signalQueued">Whether to make a <see cref="QueuedSignal"/> (someone traces the wait).</param>
    /// <param name="permits">Its weight; validated by the facade.</param>
    /// <param name="priority">Higher is served first.</param>
    /// <param name="timeout">How long it may wait (already resolved against the limiter's default); <c>null</c> for ever.</param>
    public AcquireRequest(string source, IActorRef gatekeeper, bool signalQueued, int permits, int priority, TimeSpan? timeout)
        : base(gatekeeper)
    {
        System.Diagnostics.Debug.Assert(permits > 0, "the facade validates the weight");
        System.Diagnostics.Debug.Assert(timeout != TimeSpan.MinValue, "the facade rejects negative timeouts; MinValue's ticks mark none");
        Source = source;
        _permits = permits;
        _timeoutTicks = timeout is { } wait ? wait.Ticks : NoTimeout;
        if (priority != 0 || signalQueued)
        {
            _uncommon = new Uncommon
            {
                Priority = priority,
                QueuedSignal = signalQueued ? new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously) : null,
            };
        }
    }

    /// <inheritdoc />
    public override string Source { get; }

    /// <inheritdoc />
    public override PermitDemand Demand => new(_permits);

    /// <inheritdoc />
    public override int Priority => _uncommon?.Priority ?? 0;

    /// <inheritdoc />
    public override TimeSpan? Timeout => _timeoutTicks == NoTimeout ? null : TimeSpan.FromTicks(_timeoutTicks);

    /// <inheritdoc />
    public override TimeSpan? TimeLeft => _uncommon?.TimeLeft ?? Timeout;

    /// <summary>
    /// Present only when someone listens to the tracer: completes with the waiting count (this request included)
    /// when the request has to wait, or with -1 when it does not, so the facade opens a wait span only for a real wait.
    /// </summary>
    public TaskCompletionSource<int>? QueuedSignal => _uncommon?.QueuedSignal;

    /// <summary>
    /// When a limit over time could grant it, counting the demand queued ahead, if it was rejected; <c>null</c> when no
    /// rate knows. Set by whoever rejects it before it fails it, read by the caller after the failure.
    /// </summary>
    public TimeSpan? RetryAfter
    {
        get => _uncommon?.RetryAfter;
        set
        {
            if (value is not null || _uncommon is not null)
            {
                (_uncommon ??= new Uncommon()).RetryAfter = value;
            }
        }
    }

    /// <inheritdoc />
    public bool Announced { get; set; }

    /// <summary>
    /// A restarting gatekeeper carries this request over with <paramref name="left"/> of its wait (at least a tick, so
    /// one already due times out at the next gate's first wake rather than being refused as a request that would wait).
    /// </summary>
    public void CarryTimeLeft(TimeSpan left) => (_uncommon ??= new Uncommon()).TimeLeft = left > TimeSpan.Zero ? left : TimeSpan.FromTicks(1);

    /// <summary>Where the granted lease goes back; set by whoever serves the request, before it can be granted.</summary>
    public ILeaseReleaser? Releaser { get; set; }

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }

    /// <summary>
    /// A zero-permit acquire's wait (<c>RateLimiter.AcquireAsync(0)</c>): it waits in line like any request, and once it
    /// would be granted its caller hears so while it takes nothing — its grant completes it, then reports the grant lost,
    /// so whoever granted (a gate, a partition, a loan) puts back what it took at once, in the same step. Set before it is sent.
    /// </summary>
    public bool IsProbe { get; set; }

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        QueuedSignal?.TrySetResult(-1);
        return base.TryGrant(grant) && !IsProbe;
    }

    /// <inheritdoc />
    public override void Fail(Exception error)
    {
        QueuedSignal?.TrySetResult(-1);
        base.Fail(error);
    }

    /// <inheritdoc />
    public override void OnQueued(in PermitSnapshot now) => QueuedSignal?.TrySetResult(now.Waiting);

    /// <inheritdoc />
    public override void Undelivered() => Fail(PermitRejections.Disposed());

    /// <inheritdoc />
    protected override ConcurrencyLease ResultOf(in PermitGrant grant) => new(Releaser!, grant.LeaseId, Source, grant.Demand.Permits);

    /// <inheritdoc />
    protected override void OnCancellationRequested(CancellationToken cancellationToken)
    {
        base.OnCancellationRequested(cancellationToken);
        QueuedSignal?.TrySetResult(-1);
    }

    /// <summary>What few requests use, kept out of every request's size.</summary>
    private sealed class Uncommon
    {
        public int Priority;

        public TaskCompletionSource<int>? QueuedSignal;

        public TimeSpan? RetryAfter;

        public TimeSpan? TimeLeft;
    }
}

/// <summary>The replies of <see cref="GatekeeperProtocol"/>, for actor waiters of the gatekeeper and of a cluster limiter's agent.</summary>
internal sealed class GatekeeperReplies : IPermitReplies
{
    public static readonly GatekeeperReplies Instance = new();

    /// <inheritdoc />
    public object Granted(long requestId, in PermitGrant grant) => new GatekeeperProtocol.Granted(requestId, grant.LeaseId) { Permits = grant.Demand.Permits };

    /// <inheritdoc />
    public object? Queued(long requestId, in PermitSnapshot now) => new GatekeeperProtocol.Queued(requestId, now.Waiting);

    /// <inheritdoc />
    public object Failed(long requestId, Exception error) => new GatekeeperProtocol.Rejected(requestId, error.Message) { Kind = KindOf(error) };

    /// <summary>The protocol's reason for the exception a facade caller would get.</summary>
    public static RejectionReason KindOf(Exception error) => error switch
    {
        ConcurrencyWaitTimeoutException => RejectionReason.TimedOut,
        ConcurrencyLimitExceededException { IsEviction: true } => RejectionReason.Evicted,
        ConcurrencyLimitExceededException => RejectionReason.QueueFull,
        ObjectDisposedException => RejectionReason.Disposed,
        ArgumentOutOfRangeException { ParamName: "permits" } => RejectionReason.ExceedsLimit,
        _ => RejectionReason.InvalidRequest,
    };
}

/// <summary>A facade lease was disposed: its permits come back.</summary>
/// <param name="Permits">How many.</param>
internal sealed record ReleaseSlot(int Permits) : IDeadLetterSuppression
{
    /// <summary>One permit back: the common lease, sent without allocating.</summary>
    public static readonly ReleaseSlot Instance = new(1);
}

/// <summary>The gatekeeper's timer fired: expire the waiters past their deadline. A fire that finds it stopped is no news.</summary>
internal sealed class GateWake : IDeadLetterSuppression
{
    public static readonly GateWake Instance = new();
}

/// <summary>An actor that waited or held leases has stopped.</summary>
internal sealed record HolderStopped(IActorRef Holder);

/// <summary>The facade is disposed: fail every waiter and stop. <see cref="Stopped"/> completes once the gatekeeper has stopped.</summary>
internal sealed class DisposeGatekeeper : IUndeliverableRequest
{
    public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Stopped.TrySetResult();
}

/// <summary>
/// The counts and limits the gatekeeper publishes after every message, for synchronous reads by the facade. One
/// writer per value: the gatekeeper, except that a facade's <c>Resize</c> writes the limits it asked for at once (the
/// gatekeeper writes the same values when it applies them), and that the held count lives in the <see cref="Loan"/>'s
/// word, which callers claiming from or returning into an open loan change too (so it is exact at every instant).
/// </summary>
internal sealed class LimiterCounts
{
    private volatile int _waiting;

    /// <summary>The waiters' demand, in permits or tokens (<see cref="Queued"/>); written with <see cref="Volatile"/>, as a long cannot be volatile.</summary>
    private long _queued;

    /// <summary>The gate's last lease number as of the gatekeeper's last publication (<see cref="PublishLeases"/>).</summary>
    private long _gateLeases;

    public LimiterCounts() => Turn = new GateTurn(Loan);

    /// <summary>
    /// The limits callers read, with the number of the facade resize they come from: replaced whole, by a CAS that
    /// checks that number, never written field by field — so the gatekeeper's publication of a resize it applied can
    /// never overwrite the limits of a newer facade <c>Resize</c> that returned meanwhile (a check and a separate store
    /// could: the review test <c>ResizeOrderReviewTests</c> caught five leases claimed after <c>Resize(maxRunning: 2)</c>).
    /// </summary>
    private PublishedLimits _limits = new(0, 0, -1);

    /// <summary>The facade's resizes so far (<see cref="PublishResize"/>).</summary>
    private long _resizes;

    /// <summary>The newest facade resize the gatekeeper has applied; the gatekeeper's only (it survives a restart here).</summary>
    private long _handledResize;

    /// <summary>The held count last written into the loan's word by <see cref="Publish(int, int, long)"/> or read by a reclaim; the gatekeeper's only.</summary>
    private int _heldWritten = -1;

    /// <summary>The limits the gatekeeper last applied (<see cref="PublishApplied"/>); a restarted gatekeeper starts from them. The gatekeeper's only.</summary>
    public (int MaxRunning, int? MaxQueued)? Applied { get; private set; }

    /// <summary>Held now: what the gatekeeper last published, and what callers claimed from or returned into its loan since.</summary>
    public int Running => Loan.Running;

    public int Waiting => _waiting;

    /// <summary>
    /// The leases granted so far, by the gatekeeper (as of its last publication) and from its loan: it moves whenever any
    /// caller is granted one — a facade's, an actor's, a RateLimiting adapter's — so a reader that sees it unchanged
    /// knows nobody was granted a lease since (a restarted gatekeeper numbers its leases anew, which moves it too).
    /// </summary>
    public long Leases => Volatile.Read(ref _gateLeases) + Loan.Claims;

    /// <summary>
    /// What the waiters ask for: their permits (a concurrency limiter's) or their token estimates (a model API
    /// limiter's), as the gate sums them on every entry and exit of its queue; published with <see cref="Waiting"/>.
    /// </summary>
    public long Queued => Volatile.Read(ref _queued);

    public int MaxRunning => Volatile.Read(ref _limits).MaxRunning;

    public int? MaxQueued => Volatile.Read(ref _limits).MaxQueued is var maxQueued and >= 0 ? maxQueued : null;

    /// <summary>The free permits a gatekeeper without rates lends while nobody waits, and the held count.</summary>
    public PermitLoan Loan { get; } = new();

    /// <summary>The turn over a gatekeeper without rates, which its facade's contended requests and releases run in.</summary>
    public GateTurn Turn { get; }

    /// <summary>Publishes the counts of a publisher that does not weigh its waiters (a cluster agent's): <see cref="Queued"/> counts one per waiter.</summary>
    public void Publish(int running, int waiting) => Publish(running, waiting, waiting);

    /// <summary>Publishes the held count, the waiters and what they ask for (<see cref="Queued"/>).</summary>
    public void Publish(int running, int waiting, long queued)
    {
        // Against a copy kept here, not the word: reading the word to compare still waits for the line callers write.
        if (running != _heldWritten)
        {
            Loan.Publish(running);
            _heldWritten = running;
        }

        _waiting = waiting;
        Volatile.Write(ref _queued, queued);
    }

    /// <summary>Gatekeeper, with its counts: the number of the last lease its gate granted (<see cref="Leases"/>).</summary>
    public void PublishLeases(long lastLeaseId) => Volatile.Write(ref _gateLeases, lastLeaseId);

    /// <summary>
    /// Gatekeeper: the held count its loan's word holds now (read by its reclaim at the start of a message; -1 when
    /// unknown, e.g. once the loan was closed with claims in it), so <see cref="Publish(int, int, long)"/> writes the word only when
    /// the count changes.
    /// </summary>
    public void NoteHeld(int held) => _heldWritten = held;

    /// <summary>Facade, while it is made: the limits it starts with.</summary>
    public void PublishLimits(int maxRunning, int? maxQueued) => Volatile.Write(ref _limits, new PublishedLimits(0, maxRunning, maxQueued ?? -1));

    /// <summary>
    /// Facade <c>Resize</c>: numbers the resize and publishes its limits at once, unless a racing newer resize published
    /// its own first; the gatekeeper applies it when its <see cref="FacadeResize"/> with the number returned arrives.
    /// </summary>
    public long PublishResize(int maxRunning, int? maxQueued)
    {
        var sequence = Interlocked.Increment(ref _resizes);
        Replace(new PublishedLimits(sequence, maxRunning, maxQueued ?? -1), atMost: sequence - 1);
        return sequence;
    }

    /// <summary>
    /// Gatekeeper: publishes the limits it has just applied — of the facade resize <paramref name="sequence"/>, or of
    /// an actor's resize or its start when <c>null</c> — unless a facade resize it has not applied yet published its own
    /// (that call returned with its limits showing; its message comes later and publishes them again).
    /// </summary>
    public void PublishApplied(int maxRunning, int? maxQueued, long? sequence = null)
    {
        Applied = (maxRunning, maxQueued);
        // The limits in force include every facade resize up to the newest applied, whichever order their messages came in.
        _handledResize = Math.Max(_handledResize, sequence ?? 0);
        Replace(new PublishedLimits(_handledResize, maxRunning, maxQueued ?? -1), atMost: _handledResize);
    }

    /// <summary>Replaces the limits with <paramref name="next"/> while the ones published come from a resize numbered at most <paramref name="atMost"/>.</summary>
    private void Replace(PublishedLimits next, long atMost)
    {
        var seen = Volatile.Read(ref _limits);
        while (seen.Sequence <= atMost)
        {
            var was = Interlocked.CompareExchange(ref _limits, next, seen);
            if (ReferenceEquals(was, seen))
            {
                return;
            }

            seen = was;
        }
    }

    /// <summary>Limits as published, with the facade resize they come from (0: none); -1 in <see cref="MaxQueued"/> for no bound.</summary>
    private sealed record PublishedLimits(long Sequence, int MaxRunning, int MaxQueued);
}

/// <summary>Returns facade leases to their gatekeeper.</summary>
internal sealed class GatekeeperReleaser(IActorRef gatekeeper) : ILeaseReleaser, ITokenSettler
{
    /// <summary>The gatekeeper that granted the lease (a partition's own, for a partitioned limiter).</summary>
    public IActorRef Gatekeeper => gatekeeper;

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease) => Send(gatekeeper, lease.Permits);

    /// <inheritdoc />
    public void Settle(SettleTokens message) => gatekeeper.Tell(message, ActorRefs.NoSender);

    /// <summary>Tells <paramref name="to"/> that <paramref name="permits"/> came back.</summary>
    public static void Send(IActorRef to, int permits) =>
        to.Tell(permits == 1 ? ReleaseSlot.Instance : new ReleaseSlot(permits), ActorRefs.NoSender);
}

/// <summary>Asks the gatekeeper how many actor callers its books hold (idle ones included); the reply is an <see cref="int"/>. For diagnostics and tests.</summary>
internal sealed record CountHolders
{
    public static CountHolders Instance { get; } = new();
}

/// <summary>The checks of a protocol <see cref="GatekeeperProtocol.Settle"/>, alike at a gatekeeper and at a cluster limiter's agent.</summary>
internal static class SettleChecks
{
    /// <summary>Why the settle is refused, as the exception its <see cref="Status.Failure"/> carries; <c>null</c> when it may go ahead.</summary>
    /// <param name="message">The settle.</param>
    /// <param name="held">Whether the sender holds the lease.</param>
    /// <param name="settled">Whether the lease was settled already.</param>
    /// <param name="limiter">The limiter's name, for the message.</param>
    public static Exception? Refusal(GatekeeperProtocol.Settle message, bool held, bool settled, string? limiter)
    {
        var (lease, actual, of) = (message.LeaseId, message.ActualTokens, limiter ?? "the limiter");
        if (actual < 0)
        {
            return new ArgumentOutOfRangeException(nameof(message.ActualTokens), actual, $"ActualTokens must be >= 0, got {actual} (lease {lease} of {of})");
        }

        if (!held)
        {
            return new InvalidOperationException(
                $"Lease {lease} of {of} is not held by the sender: released already, or never granted to it (ActualTokens {actual}); settle before releasing it");
        }

        return settled ? new InvalidOperationException($"Lease {lease} of {of} was settled already (ActualTokens {actual}); a lease settles once") : null;
    }
}

/// <summary>
/// A facade's resize, numbered: the facade published the new limits before it sent this, so the gatekeeper publishes its
/// own only while no newer one published (an older one applied later must not show its limits over a newer call's).
/// </summary>
/// <param name="Resize">The resize.</param>
/// <param name="Sequence">Its number (<see cref="LimiterCounts.PublishResize"/>).</param>
internal sealed record FacadeResize(GatekeeperProtocol.Resize Resize, long Sequence) : IFacadeOp
{
    /// <inheritdoc />
    public bool Announced { get; set; }

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>A facade's call that must not be passed: run in the gatekeeper's turn, or sent by message and announced.</summary>
internal interface IFacadeOp : ITurnOp
{
    /// <summary>Whether the facade announced it in the gatekeeper's loan before it sent it by message (<see cref="PermitLoan.Announce"/>).</summary>
    bool Announced { get; set; }
}
