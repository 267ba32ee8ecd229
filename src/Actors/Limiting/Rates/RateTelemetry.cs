using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;

namespace ActorQueue.Actors;

/// <summary>
/// The metrics of a gatekeeper with rates: tokens granted and settled, and (for a limiter that is not a partition,
/// since a partition key is never a metric tag) the seconds until its next refill, which the gatekeeper publishes
/// after every message as a clock time and the gauge turns into a delay when it is read.
/// </summary>
internal sealed class RateTelemetry : IDisposable
{
    private static readonly Counter<long> TokensGranted =
        ActorQueueTelemetry.Published(meter => meter.CreateCounter<long>(ActorQueueTelemetry.LimiterTokensGranted, "{token}", "Tokens granted (each call's estimate)."));

    private static readonly Counter<long> TokensSettled =
        ActorQueueTelemetry.Published(meter => meter.CreateCounter<long>(ActorQueueTelemetry.LimiterTokensSettled, "{token}", "Tokens calls reported as used when they settled."));

    /// <summary>The gatekeepers the next-refill gauge reads; each removes itself when it stops.</summary>
    private static readonly ConcurrentDictionary<RateTelemetry, byte> Gauged = new();

    private static readonly ObservableGauge<double> NextRefill =
        ActorQueueTelemetry.Published(meter => meter.CreateObservableGauge(ActorQueueTelemetry.LimiterNextRefill, ObserveNextRefill, "s", "Seconds until a rate next gives tokens back."));

    /// <summary>Every limiter's rejections, tagged with why.</summary>
    public static readonly Counter<long> Rejections =
        ActorQueueTelemetry.Published(meter => meter.CreateCounter<long>(ActorQueueTelemetry.LimiterRejections, "{caller}", "Callers turned away, by reason."));

    private readonly KeyValuePair<string, object?> _tag;
    private readonly IRestingPolicy[] _rates;
    private readonly TimeProvider _time;

    /// <summary>The clock's UTC ticks of the next refill; 0 for none. Written by the gatekeeper, read by the gauge.</summary>
    private long _nextRefillUtcTicks;

    /// <summary>Where a metrics listener that throws is reported (its measurement dropped); <c>null</c> to let it through.</summary>
    private readonly ListenerFailureLog? _failures;

    /// <summary>Where the next refill is published for the adapter's refusals too (<see cref="RateLoan.RetryAfter"/>); <c>null</c> for none.</summary>
    private readonly RateLoan? _loan;

    public RateTelemetry(string metricName, IRestingPolicy[] rates, TimeProvider time, bool gauged, ListenerFailureLog? failures = null, RateLoan? loan = null)
    {
        _failures = failures;
        _loan = loan;
        _tag = new(ActorQueueTelemetry.LimiterNameTag, metricName);
        _rates = rates;
        _time = time;
        if (gauged)
        {
            GC.KeepAlive(NextRefill);
            Gauged[this] = 0;
        }
    }

    /// <summary>The <see cref="ActorQueueTelemetry.RejectionReasonTag"/> value of <paramref name="kind"/>.</summary>
    public static string ReasonOf(PermitRejectionKind kind) => kind switch
    {
        PermitRejectionKind.QueueFull => "queue_full",
        PermitRejectionKind.Evicted => "evicted",
        PermitRejectionKind.WouldWait => "would_wait",
        PermitRejectionKind.ExceedsLimit => "exceeds_limit",
        PermitRejectionKind.TimedOut => "timed_out",
        _ => "disposed",
    };

    public void Granted(in PermitGrant grant) => GrantedTokens(grant.Demand.Tokens);

    /// <summary>Tokens callers claimed from a loan, counted when the gatekeeper reclaims it.</summary>
    /// <remarks>As every measurement here, inside the gatekeeper's message: a listener that throws is logged, never let into it (it stopped the grants in progress and restarted the actor, failing its waiters).</remarks>
    public void GrantedTokens(long tokens)
    {
        if (tokens > 0)
        {
            _failures.Add(TokensGranted, tokens, _tag);
        }
    }

    public void Settled(long actualTokens) => _failures.Add(TokensSettled, actualTokens, _tag);

    /// <summary>Publishes when the rates next give something back, as gate time <paramref name="now"/> maps to the clock.</summary>
    public void AfterMessage(TimeSpan now) => AfterMessage(now, ratesAt: now);

    /// <summary>
    /// Publishes when the rates next give something back, asking them at gate time <paramref name="ratesAt"/> (no later
    /// than <paramref name="now"/>: a rate asked moves on to that time), as <paramref name="now"/> maps to the clock.
    /// </summary>
    public void AfterMessage(TimeSpan now, TimeSpan ratesAt)
    {
        var at = RateGains.UtcTicks(RateGains.Earliest(_rates, ratesAt, TimeSpan.MaxValue), now, _time);
        Volatile.Write(ref _nextRefillUtcTicks, at);
        _loan?.PublishNextRefill(at);
    }

    public void Dispose() => Gauged.TryRemove(this, out _);


    private static IEnumerable<Measurement<double>> ObserveNextRefill()
    {
        foreach (var telemetry in Gauged.Keys)
        {
            var at = Volatile.Read(ref telemetry._nextRefillUtcTicks);
            if (at != 0)
            {
                var seconds = Math.Max(0, at - telemetry._time.GetUtcNow().UtcTicks) / (double)TimeSpan.TicksPerSecond;
                yield return new Measurement<double>(seconds, telemetry._tag);
            }
        }
    }
}
