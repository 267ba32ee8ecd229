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
    public object Failed(long requestId, Exception error) => new GatekeeperProtocol.Rejected(requestId, UserText.MessageOf(error)) { Kind = KindOf(error) };

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

/// <summary>
/// Asks the gatekeeper how many callers wait in its lean FIFO (<c>GatekeeperActor.Lean.cs</c>), without moving them into
/// the gate as other messages do; the reply is an <see cref="int"/>. For diagnostics and tests.
/// </summary>
internal sealed record CountLeanWaiters
{
    public static CountLeanWaiters Instance { get; } = new();
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
