using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// A gatekeeper's metrics, tagged with the limiter's name only: a partition key is never a metric tag, since keys are
/// unbounded and every distinct tag value is a time series kept for ever by the exporter.
/// </summary>
/// <remarks>
/// A metrics listener is the application's code, run by whoever records. Given a <paramref name="log"/> (a gatekeeper's
/// own instance, which records inside its turn or message), a listener that throws from <see cref="Granted"/>,
/// <see cref="Meter"/> or <see cref="Rejected"/> is logged and its measurement dropped: let into the turn, it left a
/// waiter taken out of the queue and never told, or failed a rejected caller with the listener's exception; on a
/// facade's claim (<see cref="Claimed"/>, after the permits were claimed) it leaked them. Without a log it reaches the
/// call that recorded (tests only).
/// </remarks>
/// <param name="metricName">The limiter's name, the metric tag.</param>
/// <param name="log">Where a throwing listener is reported; <c>null</c> to let it through.</param>
internal sealed class GatekeeperTelemetry(string metricName, ILoggingAdapter? log = null)
{
    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _tag = new(ActorQueueTelemetry.LimiterNameTag, metricName);

    /// <summary>Where a throwing listener is reported; <c>null</c> to let it through.</summary>
    private readonly ListenerFailureLog? _failures = log is null ? null : new ListenerFailureLog(log, metricName);

    /// <summary>The running and waiting counts last added to the up-down counters, so that each change adds its delta.</summary>
    private (long Running, int Waiting) _metered;

    /// <summary>A grant: acquired, permits and the wait (0 for an immediate grant, nothing when its start was not measured).</summary>
    public void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        try
        {
            GrantedCore(waiter, grant);
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    private void GrantedCore(PermitWaiter waiter, in PermitGrant grant)
    {
        if (!grant.Waited)
        {
            ClaimedWithoutWaitCore(grant.Demand.Permits);
            return;
        }

        if (ActorQueueTelemetry.LimiterAcquiredCounter.Enabled)
        {
            ActorQueueTelemetry.LimiterAcquiredCounter.Add(1, _tag);
        }

        if (ActorQueueTelemetry.LimiterPermitsGrantedCounter.Enabled)
        {
            ActorQueueTelemetry.LimiterPermitsGrantedCounter.Add(grant.Demand.Permits, _tag);
        }

        if (waiter.ArrivedAt != 0)
        {
            // 0: it queued while nobody recorded wait times, so its wait is unknown.
            ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(Stopwatch.GetElapsedTime(waiter.ArrivedAt).TotalMilliseconds, _tag);
        }
    }

    /// <summary>A grant that did not wait (a partition's lease claimed from its loan, on the claimer's thread): acquired, permits, a wait of 0.</summary>
    public void ClaimedWithoutWait(int permits)
    {
        try
        {
            ClaimedWithoutWaitCore(permits);
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    private void ClaimedWithoutWaitCore(int permits)
    {
        // Checked first: on a claim path down to one compare-and-swap, three unheard measurements cost a share of it.
        if (ActorQueueTelemetry.LimiterAcquiredCounter.Enabled)
        {
            ActorQueueTelemetry.LimiterAcquiredCounter.Add(1, _tag);
        }

        if (ActorQueueTelemetry.LimiterPermitsGrantedCounter.Enabled)
        {
            ActorQueueTelemetry.LimiterPermitsGrantedCounter.Add(permits, _tag);
        }

        if (ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled)
        {
            ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(0d, _tag);
        }
    }

    /// <summary>A lease claimed from a limiter's loan, on the claimer's thread: a grant without a wait, and its permits held.</summary>
    public void Claimed(int permits)
    {
        try
        {
            ClaimedWithoutWaitCore(permits);
            ActorQueueTelemetry.LimiterRunningCounter.Add(permits, _tag);
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    /// <summary>A lease's permits returned into the loan, on the returner's thread.</summary>
    public void Returned(int permits)
    {
        try
        {
            ActorQueueTelemetry.LimiterRunningCounter.Add(-permits, _tag);
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    /// <summary>
    /// The gatekeeper reclaimed its loan with <paramref name="running"/> held: claims and returns since the loan metered
    /// their own changes, so the running instrument already shows this count.
    /// </summary>
    public void Absorb(long running) => _metered.Running = running;

    /// <summary>A rejection, counted by kind: a full queue as rejected, a wait that ran out as a timeout, an eviction as both evicted and rejected.</summary>
    public void Rejected(PermitRejectionKind kind)
    {
        try
        {
            RejectedCore(kind);
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    private void RejectedCore(PermitRejectionKind kind)
    {
        RateTelemetry.Rejections.Add(1, _tag, new(ActorQueueTelemetry.RejectionReasonTag, RateTelemetry.ReasonOf(kind)));
        switch (kind)
        {
            case PermitRejectionKind.QueueFull:
                ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _tag);
                break;
            case PermitRejectionKind.Evicted:
                ActorQueueTelemetry.LimiterEvictedCounter.Add(1, _tag);
                ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _tag);
                break;
            case PermitRejectionKind.TimedOut or PermitRejectionKind.WouldWait:
                ActorQueueTelemetry.LimiterWaitTimeoutsCounter.Add(1, _tag);
                break;
        }
    }

    /// <summary>Adds what changed since the last call to the running and waiting up-down counters.</summary>
    public void Meter(long running, int waiting)
    {
        // The counts first: a listener that throws must not make the next change add this one's delta again.
        var (ran, waited) = (running - _metered.Running, waiting - _metered.Waiting);
        _metered = (running, waiting);
        MeterChange((int)ran, waited);
    }

    /// <summary>Adds <paramref name="running"/> and <paramref name="waiting"/> to the up-down counters (a partition's change: the limiter's counts are the sum of its partitions').</summary>
    public void MeterChange(int running, int waiting)
    {
        try
        {
            if (running != 0 && ActorQueueTelemetry.LimiterRunningCounter.Enabled)
            {
                ActorQueueTelemetry.LimiterRunningCounter.Add(running, _tag);
            }

            if (waiting != 0 && ActorQueueTelemetry.LimiterWaitingCounter.Enabled)
            {
                ActorQueueTelemetry.LimiterWaitingCounter.Add(waiting, _tag);
            }
        }
        catch (Exception error) when (_failures is not null)
        {
            ListenerFailed(error);
        }
    }

    private void ListenerFailed(Exception error) => _failures!.Report(error);
}
