using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;

namespace ActorQueue.Actors;

/// <summary>
/// A gatekeeper's metrics, tagged with the limiter's name only: a partition key is never a metric tag, since keys are
/// unbounded and every distinct tag value is a time series kept for ever by the exporter.
/// </summary>
/// <remarks>
/// A metrics listener is the application's code, run by whoever records. Given <paramref name="failures"/> (a gatekeeper's
/// own instance records inside its turn or message), a listener that throws is reported there and only its own
/// measurement is dropped (each instrument is guarded alone, <see cref="GuardedMeasurements"/>): let into the turn, it
/// left a waiter taken out of the queue and never told, or failed a rejected caller with the listener's exception; on a
/// facade's claim (<see cref="Claimed"/>, after the permits were claimed) it leaked them. Without one it reaches the
/// call that recorded (tests only).
/// </remarks>
/// <param name="metricName">The limiter's name, the metric tag.</param>
/// <param name="failures">Where a throwing listener is reported (the owner's one log of them); <c>null</c> to let it through.</param>
internal sealed class GatekeeperTelemetry(string metricName, ListenerFailureLog? failures = null)
{
    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _tag = new(ActorQueueTelemetry.LimiterNameTag, metricName);

    /// <summary>A grant: acquired, permits and the wait (0 for an immediate grant, nothing when its start was not measured).</summary>
    public void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        if (!grant.Waited)
        {
            ClaimedWithoutWait(grant.Demand.Permits);
            return;
        }

        if (ActorQueueTelemetry.LimiterAcquiredCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterAcquiredCounter, 1, _tag);
        }

        if (ActorQueueTelemetry.LimiterPermitsGrantedCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterPermitsGrantedCounter, grant.Demand.Permits, _tag);
        }

        if (waiter.ArrivedAt != 0)
        {
            // 0: it queued while nobody recorded wait times, so its wait is unknown.
            failures.Record(ActorQueueTelemetry.LimiterWaitTimeHistogram, Stopwatch.GetElapsedTime(waiter.ArrivedAt).TotalSeconds, _tag);
        }
    }

    /// <summary>A grant that did not wait (a partition's lease claimed from its loan, on the claimer's thread): acquired, permits, a wait of 0.</summary>
    public void ClaimedWithoutWait(int permits)
    {
        // Checked first: on a claim path down to one compare-and-swap, three unheard measurements cost a share of it.
        if (ActorQueueTelemetry.LimiterAcquiredCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterAcquiredCounter, 1, _tag);
        }

        if (ActorQueueTelemetry.LimiterPermitsGrantedCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterPermitsGrantedCounter, permits, _tag);
        }

        if (ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled)
        {
            failures.Record(ActorQueueTelemetry.LimiterWaitTimeHistogram, 0d, _tag);
        }
    }

    /// <summary>A lease claimed from a limiter's loan, on the claimer's thread: a grant without a wait, and its permits held.</summary>
    public void Claimed(int permits)
    {
        ClaimedWithoutWait(permits);
        if (ActorQueueTelemetry.LimiterRunningCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterRunningCounter, permits, _tag);
        }
    }

    /// <summary>A lease's permits returned into the loan, on the returner's thread (checked first, as a claim's measurements are).</summary>
    public void Returned(int permits)
    {
        if (ActorQueueTelemetry.LimiterRunningCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterRunningCounter, -permits, _tag);
        }
    }

    /// <summary>A rejection, counted by kind: a full queue as rejected, a wait that ran out as a timeout, an eviction as both evicted and rejected.</summary>
    public void Rejected(PermitRejectionKind kind)
    {
        RejectedFor(RateTelemetry.ReasonOf(kind));
        switch (kind)
        {
            case PermitRejectionKind.QueueFull:
                failures.Add(ActorQueueTelemetry.LimiterRejectedCounter, 1, _tag);
                break;
            case PermitRejectionKind.Evicted:
                failures.Add(ActorQueueTelemetry.LimiterEvictedCounter, 1, _tag);
                failures.Add(ActorQueueTelemetry.LimiterRejectedCounter, 1, _tag);
                break;
            case PermitRejectionKind.TimedOut or PermitRejectionKind.WouldWait:
                failures.Add(ActorQueueTelemetry.LimiterWaitTimeoutsCounter, 1, _tag);
                break;
        }
    }

    /// <summary>A partitioned limiter's request whose key's <c>GetHashCode</c> or <c>Equals</c> threw on its actor's thread: turned away, <c>key_failed</c>.</summary>
    public void KeyFailed() => RejectedFor(KeyFailedReason);

    /// <summary>The rejection reason of a request whose partition key's <c>GetHashCode</c> or <c>Equals</c> threw on the limiter's actor's thread.</summary>
    public const string KeyFailedReason = "key_failed";

    /// <summary>
    /// A request failed because handling it threw where nothing foresaw it — a partitioned limiter's actor's backstop
    /// (<c>AroundReceive</c>), or a turn of a partition or of a gatekeeper (the application's code, such as the limit's
    /// clock, or a defect): turned away, <c>handler_failed</c>. One reason for both: to an operator each is a caller failed
    /// by the limiter's own handling rather than by a limit, with the cause in the log.
    /// </summary>
    public void HandlerFailed() => RejectedFor(HandlerFailedReason);

    /// <summary>The rejection reason of a request whose handling threw where nothing foresaw it (a limiter's actor's backstop, a partition's or gatekeeper's turn).</summary>
    public const string HandlerFailedReason = "handler_failed";

    /// <summary>One request turned away for <paramref name="reason"/> (the rejection counter's reason tag).</summary>
    private void RejectedFor(string reason) => failures.Add(RateTelemetry.Rejections, 1, _tag, new(ActorQueueTelemetry.RejectionReasonTag, reason));

    /// <summary>A caller that would not wait (a <c>RateLimiter</c> adapter's <c>AttemptAcquire</c>) found too little free: turned away, <c>would_wait</c>.</summary>
    public void RefusedAttempt() => Rejected(PermitRejectionKind.WouldWait);

    /// <summary>Adds <paramref name="running"/> and <paramref name="waiting"/> to the up-down counters (a partition's change: the limiter's counts are the sum of its partitions').</summary>
    public void MeterChange(int running, int waiting)
    {
        if (running != 0 && ActorQueueTelemetry.LimiterRunningCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterRunningCounter, running, _tag);
        }

        if (waiting != 0 && ActorQueueTelemetry.LimiterWaitingCounter.Enabled)
        {
            failures.Add(ActorQueueTelemetry.LimiterWaitingCounter, waiting, _tag);
        }
    }
}
