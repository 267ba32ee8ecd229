using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

// A model-API limiter's agent: the settles of its callers' leases, kept until the gatekeeper confirms them, and the
// newest state of the rates it heard of, which it announces to a new incarnation (see ClusterGatekeeperActor.Rates.cs).
internal partial class LimiterAgentActor
{
    /// <summary>The held leases settled already (a lease settles once).</summary>
    private readonly HashSet<long> _settled = [];

    /// <summary>Settles the gatekeeper has not confirmed yet, by request id: sent again to a new incarnation.</summary>
    private readonly Dictionary<long, RemoteSettle> _unconfirmed = [];

    /// <summary>
    /// The epoch of the incarnation that granted each held lease (and charged it), by request id, for its settle
    /// (<see cref="RemoteSettle.ChargedBy"/>): only that incarnation gives unused tokens back. Kept across restarts.
    /// </summary>
    private readonly Dictionary<long, long> _chargedBy = [];

    /// <summary>The number of the last settle sent (<see cref="RemoteSettle.Sequence"/>): 1 for the first.</summary>
    private long _lastSettle;

    /// <summary>The newest state of the rates a reply of the gatekeeper carried.</summary>
    private RateState _rates = RateState.None;

    /// <summary>Whether this agent followed an incarnation before the one it follows now.</summary>
    private bool _followedBefore;

    /// <summary>A facade lease's <see cref="ModelApiLease.Settle"/> (the lease checked it already).</summary>
    private void HandleFacadeSettle(SettleTokens message)
    {
        if (_held.ContainsKey(message.LeaseId) && _settled.Add(message.LeaseId))
        {
            SendSettle(new RemoteSettle(_gatekeeper.Epoch, message.LeaseId, message.Charged.Permits, message.Charged.Tokens, message.ActualTokens)
            {
                ChargedBy = _chargedBy.GetValueOrDefault(message.LeaseId),
            });
        }
    }

    /// <summary>A local actor's <see cref="GatekeeperProtocol.Settle"/> (from <paramref name="sender"/>, answered): checked as at a gatekeeper, then sent on.</summary>
    private void SettleActorLease(GatekeeperProtocol.Settle message, IActorRef sender)
    {
        var held = _held.TryGetValue(message.LeaseId, out var lease) && lease is ActorWaiter actor && actor.ReplyTo.Equals(sender);
        if (SettleChecks.Refusal(message, held, held && _settled.Contains(message.LeaseId), _displayName) is { } refusal)
        {
            sender.Tell(new Status.Failure(refusal));
            return;
        }

        _settled.Add(message.LeaseId);
        SendSettle(new RemoteSettle(_gatekeeper.Epoch, message.LeaseId, lease!.Demand.Permits, lease.Demand.Tokens, message.ActualTokens)
        {
            ChargedBy = _chargedBy.GetValueOrDefault(message.LeaseId),
        });
        sender.Tell(new GatekeeperProtocol.Settled(message.LeaseId, message.ActualTokens));
    }

    /// <summary>Sends a settle, numbered the first time (sent again, it keeps its number), and keeps it until confirmed.</summary>
    private void SendSettle(RemoteSettle settle)
    {
        settle = settle.Sequence == 0 ? settle with { Sequence = ++_lastSettle } : settle;
        _unconfirmed[settle.RequestId] = settle;
        Send(settle);
    }

    private void HandleSettled(RemoteSettled message)
    {
        HearRates(message.Rates);
        if (message.Epoch == _gatekeeper.Epoch)
        {
            _unconfirmed.Remove(message.RequestId);
        }
    }

    private void HearRates(RateState rates) => _rates = _rates.Newest(rates);

    /// <summary>
    /// After announcing itself: the settles not confirmed yet go again, oldest first (by <see cref="RemoteSettle.Sequence"/>).
    /// To the incarnation a settle was sent to, whole: it may have dropped it (a stale hello made it stop counting this
    /// agent as announced: a give-back dropped there was lost) or taken it (asked again before its confirmation came),
    /// and it takes each number once, oldest first — so they go in order: one taken after a newer one is skipped. To
    /// another incarnation, with its excess only: the last one may have taken it before it stopped, and its debt may be
    /// in the state just announced; charging an excess twice only makes the rate stricter, while giving unused tokens
    /// back twice could grant beyond it.
    /// </summary>
    private void SettleAgainAfterRecover()
    {
        foreach (var settle in _unconfirmed.Values.OrderBy(settle => settle.Sequence).ToList())
        {
            if (settle.Epoch == _gatekeeper.Epoch || settle.ActualTokens > settle.ChargedTokens)
            {
                SendSettle(settle with { Epoch = _gatekeeper.Epoch });
            }
            else
            {
                _unconfirmed.Remove(settle.RequestId);
            }
        }
    }

    /// <summary>Whether a recover request comes from an incarnation after one this agent followed.</summary>
    private void NoteSuccession(long epoch) => _followedBefore |= _gatekeeper.Epoch != 0 && _gatekeeper.Epoch != epoch;
}
