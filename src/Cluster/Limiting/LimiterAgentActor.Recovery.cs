using Akka.Actor;

namespace ActorQueue.Cluster;

// A cluster limiter's agent across gatekeeper incarnations: it answers a new incarnation's roll call with what this node holds and waits for, and says hello again while nothing answers.
internal partial class LimiterAgentActor
{
    /// <summary>
    /// A gatekeeper incarnation asks what this node holds and waits for: follow it from now on and tell it, with which
    /// waits went out while it followed none (<see cref="_unsent"/>: no incarnation accepted those); then send it the
    /// resizes not yet heard applied (<see cref="_resizes"/>), in order.
    /// </summary>
    private void HandleRecover(RecoverLimiter message)
    {
        NoteSuccession(message.Epoch); // an incarnation left behind was followed before: noting it again changes nothing
        if (!_gatekeeper.Follow(Context, Sender, message.Epoch))
        {
            return; // a late request of an incarnation this agent left behind
        }

        if (_fetchId != 0)
        {
            // A fetch is in no announcement. Asked of an incarnation left behind, it is never answered now; and one that
            // asks again with its own epoch may have dropped it: it asks again an agent it stopped counting as announced
            // (a stale hello came after the announcement), or one it asked twice (its roll call and directly) — then the
            // fetch is still answered, and a block it brings is taken all the same (HandleGranted). Left on its way, a
            // dropped fetch stopped every later one (Review/RecoveryRacesReviewTests).
            FetchEnded(gotBlock: false);
        }

        var pendingIds = _pending.Keys.Order().ToArray(); // oldest first: ids ascend with arrival
        var heldIds = _held.Keys.Where(id => !_fromBlock.Contains(id)).ToArray(); // block leases are in the block
        Sender.Tell(new LimiterAnnounce(_gatekeeper.Epoch, _selfAddress, heldIds, pendingIds, Array.ConvertAll(pendingIds, id => _pending[id].Source))
        {
            HeldPermits = Array.ConvertAll(heldIds, id => _held[id].Demand.Permits),
            PendingPermits = Array.ConvertAll(pendingIds, id => _pending[id].Demand.Permits),
            PendingPriorities = Array.ConvertAll(pendingIds, id => _pending[id].Priority),
            PendingMayWait = Array.ConvertAll(pendingIds, id => _pending[id].Timeout != TimeSpan.Zero),
            PendingTokens = Array.ConvertAll(pendingIds, id => _pending[id].Demand.Tokens),
            Limit = _limit,
            Rates = _rates,
            FollowedBefore = _followedBefore,
            BlockPermits = _block,
            PendingUnsent = Array.ConvertAll(pendingIds, _unsent.Contains),
        });
        _unsent.Clear(); // told: from now on they are this incarnation's, as the ids no longer pending are nobody's
        foreach (var resize in _resizes)
        {
            Sender.Tell(resize); // after the announcement, in order: applied unless its limit already includes it
        }

        _resizesWentTo = _gatekeeper.Current; // the kept ones went there last, in order

        ReaddressSettlesSentToNone();
        SettleAgainAfterRecover();
        FetchWishedBeforeFollowing();
    }

    /// <summary>
    /// Before the settles not confirmed go again: those sent with epoch 0 went to no incarnation (an instance after a
    /// restart follows none until it is asked again; sent through the hub, every incarnation drops them, their epochs
    /// never 0), so they are this incarnation's to take, whole: given the epoch just followed,
    /// <see cref="SettleAgainAfterRecover"/> sends them as sent to it. Giving their unused tokens back cannot count twice
    /// (no incarnation took them), and a lease another incarnation granted gives nothing back there
    /// (<see cref="RemoteSettle.ChargedBy"/>: the settle names the incarnation that charged it). Sent with their excess
    /// only before, a give-back after any restart of the agent (the settle handled by the next instance before its announcement, or applied at a failed instance's stop) was lost: the
    /// rate stayed stricter than its calls for good (Review/AgentLeftoversReviewTests).
    /// </summary>
    private void ReaddressSettlesSentToNone()
    {
        foreach (var (id, settle) in _unconfirmed.Where(entry => entry.Value.Epoch == 0).ToList())
        {
            _unconfirmed[id] = settle with { Epoch = _gatekeeper.Epoch };
        }
    }

    private void HandleTerminated(Terminated message)
    {
        if (_gatekeeper.Lost(message.ActorRef))
        {
            // The singleton moved or stopped. Reach the hub again so a new gatekeeper exists and asks us to announce.
            HelloIfUnanswered();
            return;
        }

        // A local actor caller stopped: withdraw its waits and release its leases.
        foreach (var key in _idByActorRequest.Keys.Where(key => key.Actor.Equals(message.ActorRef)).ToList())
        {
            _idByActorRequest.Remove(key, out var id);
            if (_pending.Remove(id))
            {
                Timers.Cancel(new WaitExpired(id));
                Send(new RemoteCancel(_gatekeeper.Epoch, id));
            }
            else
            {
                ReleaseHeld(id);
            }
        }

        PublishLocal();
    }

    /// <summary>With requests or a resize at stake, make sure some gatekeeper incarnation hears of this agent.</summary>
    private void HelloIfUnanswered()
    {
        if (!IsIdle)
        {
            _gatekeeper.HelloIfUnfollowed(Self);
        }
    }
}
