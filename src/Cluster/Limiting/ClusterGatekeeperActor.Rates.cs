using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// The cluster gatekeeper's rates (a model-API limiter's requests and tokens per period), granted with its permits in
// one gate, and what survives of them across a hand-over of the singleton.
//
// A successor incarnation cannot know how much of the current period its predecessor granted, nor when its bucket would
// have refilled: it starts every rate empty, counting its periods from its own start (the take-over), and owes the
// newest debt any agent heard of (a settle's excess beyond empty). So no period is refilled twice and no debt is lost,
// at the price of at most one period's grants after a hand-over: conservative, it never grants more than the rate.
internal sealed partial class ClusterGatekeeperActor
{
    /// <summary>The rates granted with the permits, requests then tokens; empty for a concurrency limit only.</summary>
    private readonly IRestingPolicy[] _rates;

    /// <summary>Wakes the actor when a rate fits the head of the queue again.</summary>
    private readonly WakeTimer _wakeTimer;

    /// <summary>Tokens granted and settled, the next refill; <c>null</c> without rates.</summary>
    private readonly RateTelemetry? _rateTelemetry;

    /// <summary>The newest state of the rates this incarnation gave out or heard of; its sequence orders states across incarnations.</summary>
    private RateState _rateState = RateState.None;

    /// <summary>Whether an announcing agent followed an earlier incarnation: then the rates may be spent, and start empty.</summary>
    private bool _successor;

    /// <summary>An announcement's view of the rates: the newest state wins, and any agent that knew a predecessor makes this a successor.</summary>
    private void HearRates(LimiterAnnounce message)
    {
        _rateState = _rateState.Newest(message.Rates);
        _successor |= message.FollowedBefore;
    }

    /// <summary>A successor's rates, once recovered: empty from now, less the newest debt heard of (see the file's note).</summary>
    private void StartRates()
    {
        if (_rates.Length == 0 || !_successor)
        {
            return;
        }

        var now = _gate.Now;
        for (var i = 0; i < _rates.Length; i++)
        {
            // Summed without wrapping: a member may announce a debt up to long.MaxValue, and the rate keeps what it can count.
            var debt = i < _rateState.Debts.Length ? Math.Max(0, _rateState.Debts[i]) : 0;
            _rates[i].Take(debt > long.MaxValue - _rates[i].Limit ? long.MaxValue : _rates[i].Limit + debt, now);
        }

        _log.Info("Cluster gatekeeper {0}: succeeds an earlier incarnation, so its rates start empty with debts [{1}] (state {2})",
            _name, string.Join(", ", _rateState.Debts), _rateState.Sequence);
    }

    /// <summary>
    /// The rates' state now, numbered after every state before it; agents keep the newest. The number stops at
    /// <see cref="long.MaxValue"/> (only a member's announced state gets near it): wrapped, it sank below every earlier state.
    /// </summary>
    private RateState StampRates()
    {
        if (_rates.Length == 0)
        {
            return RateState.None;
        }

        var now = _gate.Now;
        var debts = new long[_rates.Length];
        for (var i = 0; i < _rates.Length; i++)
        {
            debts[i] = -Available(_rates[i], now);
        }

        var sequence = _rateState.Sequence == long.MaxValue ? long.MaxValue : _rateState.Sequence + 1;
        _rateState = new RateState(sequence, Array.ConvertAll(debts, debt => Math.Max(0, debt)));
        return _rateState;
    }

    /// <summary>
    /// A call's real token count: the rates give back or owe, waiters that fit now are granted, the agent hears the new
    /// state. A settle not newer than the newest taken from its agent came again (the agent announced itself again before
    /// the confirmation reached it): confirmed again, it changes nothing.
    /// </summary>
    private void HandleSettle(RemoteSettle message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return; // the agent sends it again once it has announced itself to this incarnation
        }

        if (message.Sequence != 0)
        {
            if (message.Sequence <= agent.LastSettle)
            {
                Sender.Tell(new RemoteSettled(_incarnation.Epoch, message.RequestId, StampRates()));
                return;
            }

            agent.LastSettle = message.Sequence;
        }

        // A lease another incarnation granted was charged there, not here: its settle owes only the excess and gives
        // nothing back (review 67: a refund of what this incarnation never charged granted it a second time). Decided by
        // the settle's own word (ChargedBy), not by the leases announced here: a lease released before its agent
        // announced itself here (a settle re-addressed after the agent's restart) was refunded (Review/ClusterLeftoversReviewTests).
        var actual = message.ChargedBy == _incarnation.Epoch ? message.ActualTokens : Math.Max(message.ActualTokens, message.ChargedTokens);
        _rateTelemetry?.Settled(message.ActualTokens);
        _gate.Settle(new PermitDemand(message.Permits, message.ChargedTokens), actual);
        Sender.Tell(new RemoteSettled(_incarnation.Epoch, message.RequestId, StampRates()));
    }

    /// <summary>What the rate of <paramref name="measure"/> has left now, below zero while it owes; <c>null</c> without one.</summary>
    private long? Available(PermitMeasure measure)
    {
        var now = _gate.Now;
        foreach (var rate in _rates)
        {
            if (rate.Measure == measure)
            {
                return Available(rate, now);
            }
        }

        return null;
    }

    /// <summary>Left in <paramref name="rate"/> at <paramref name="now"/>: its limit less what is in use, below zero for a debt.</summary>
    private static long Available(IRestingPolicy rate, TimeSpan now)
    {
        rate.Available(now); // brings its refills or window up to now
        return rate.Limit - rate.InUse;
    }

    /// <summary>After every message: the timer for when a rate fits the head again, and the next-refill gauge.</summary>
    private void AfterRates()
    {
        if (_rates.Length != 0)
        {
            _wakeTimer.Arm(_gate.NextWakeAt);
            _rateTelemetry!.AfterMessage(_gate.Now);
        }
    }
}
