using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper as its gate's listener (<see cref="IPermitGateListener"/>): it stages the counts for the facade and
/// meters them, publishes them before any caller hears of a change, keeps its actor callers' books on grants and
/// rejections, and turns a rejection into the exception its caller gets.
/// </summary>
internal sealed partial class GatekeeperActor
{
    /// <inheritdoc />
    /// <remarks>
    /// The counts the facade reads are written when a caller is about to be told something (<see cref="PublishCounts"/>)
    /// and at the end of the message, not at every step: a release followed by the head's grant leaves the held count
    /// where it was, and writing it twice (one less, then back) would cost two atomic operations on the loan's word,
    /// the line every contended caller writes (the profile of issue 21 put most of the gap to a bare actor there).
    /// </remarks>
    void IPermitGateListener.Publish(in PermitSnapshot now)
    {
        _turnCounts.Stage((int)now.InUse, now.Waiting, _gate.Queued + _fifo.Queued); // one of the two is 0 (GatekeeperActor.Lean.cs)
        _turnCounts.Meter(_telemetry, now.InUse, now.Waiting);
    }

    /// <inheritdoc />
    void IPermitGateListener.Queued(PermitWaiter waiter)
    {
        PublishCounts(); // before the waiter hears it waits: it finds itself counted
        // Reading the clock costs a measurable share of a contended hand-off, so only when someone records wait times.
        waiter.ArrivedAt = ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled ? Stopwatch.GetTimestamp() : 0;
    }

    /// <inheritdoc />
    void IPermitGateListener.Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        PublishCounts(); // before the waiter hears of its grant: it finds itself counted
        if (waiter is HolderTicket ticket)
        {
            BookGrant(ticket, grant);
        }
    }

    /// <inheritdoc />
    void IPermitGateListener.GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
        // Only a facade caller can withdraw at the instant of its grant, and it left nothing in the books.
    }

    /// <inheritdoc />
    void IPermitGateListener.Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        _telemetry.Granted(waiter, grant);
        _rateTelemetry?.Granted(grant);
    }

    /// <inheritdoc />
    Exception IPermitGateListener.Rejecting(PermitWaiter waiter, in PermitRejection rejection)
    {
        PublishCounts();
        if (rejection.Kind == PermitRejectionKind.Disposed)
        {
            return PermitRejections.Disposed();
        }

        // A queued actor waiter leaves its holder's books as it leaves the queue (evicted, timed out, shrunk out).
        if (waiter is HolderTicket ticket)
        {
            BookRejection(ticket);
        }

        _telemetry.Rejected(rejection.Kind);
        return PermitRejections.ToException(waiter, rejection, _settings.Name);
    }
}
