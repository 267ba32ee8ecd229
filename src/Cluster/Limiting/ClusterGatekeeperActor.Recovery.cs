using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;
using ClusterEvent = Akka.Cluster.ClusterEvent;

namespace ActorQueue.Cluster;

// A cluster gatekeeper incarnation recovering: the roll call of the members, the agents' announcements adopted (leases with
// their permits, blocks, waits, the newest limit), and the move to serving once every member answered or left.
internal sealed partial class ClusterGatekeeperActor
{
    private void HandleClusterState(ClusterEvent.CurrentClusterState state)
    {
        if (_incarnation.Begin(state.Members.Select(member => member.Address)))
        {
            ServeIfRecovered();
            return;
        }

        Timers.StartPeriodicTimer(RecoverTick.Instance, RecoverTick.Instance, _recoverInterval);
    }

    private void HandleMemberRemoved(Address node)
    {
        if (_incarnation.Answered(node))
        {
            _log.Info("Cluster gatekeeper {0}: member {1} was removed before it announced; nothing of it is counted", _name, node);
            ServeIfRecovered();
        }
    }

    /// <summary>
    /// A member without ActorQueue's node host (a plain Akka node in the same cluster, or one whose extension has not
    /// started yet) has no agents, so it holds no leases: it is not waited for.
    /// </summary>
    private void HandleHostIdentity(ActorIdentity identity)
    {
        if (identity is { Subject: null, MessageId: string node } && _incarnation.Answered(Address.Parse(node)))
        {
            ServeIfRecovered();
        }
    }

    private void ServeIfRecovered()
    {
        if (!_incarnation.IsRecovered)
        {
            return;
        }

        Timers.Cancel(RecoverTick.Instance);
        AkkaCluster.Get(Context.System).Unsubscribe(Self);
        _log.Info("Cluster gatekeeper {0}: recovered {1} permit(s) held and {2} waiter(s) from {3} agent(s); limit {4}",
            _name, _slots.InUse, _gate.Waiting, _agents.Count, _slots.Limit);
        StartRates();
        Become(Serving);
        Stash.UnstashAll();
        foreach (var (resize, sender) in _heldResizes)
        {
            HandleResize(resize, sender); // in arrival order, before anything is granted: a node's resize went out before its later requests
        }

        _heldResizes.Clear();
        _gate.Open();
        foreach (var waiter in _newcomers)
        {
            _gate.Offer(waiter); // granted if it fits and nobody ranks before it, else queued within the bound, else refused
        }

        _newcomers.Clear();
    }

    /// <summary>
    /// Takes an agent's first announcement to this incarnation: its leases count with their permits, its waits queue
    /// behind those already waiting (oldest first, past the queue bound: they were accepted before), and a newer
    /// resized limit than this incarnation knows becomes the limit. Waits the agent sent while it followed no
    /// incarnation (<see cref="LimiterAnnounce.PendingUnsent"/>: its first contact, or after a loss) were never
    /// accepted: they are offered as newcomers, so they meet the queue bound — by a serving
    /// gatekeeper once the announcement is in, by a recovering one once its gate opens (<see cref="_newcomers"/>:
    /// offered at its closed gate, a small bound would refuse them all, even the first request of a new limiter).
    /// </summary>
    /// <remarks>
    /// An agent known here announces itself again when it left this incarnation and was asked again
    /// (<see cref="Incarnation.Announced"/>): its announcement replaces what it said before (<see cref="Reconcile"/>).
    /// </remarks>
    /// <returns>Whether the announcement was taken (not of another epoch, nor a repeat).</returns>
    private bool Adopt(LimiterAnnounce message)
    {
        if (!_incarnation.Announced(message.Epoch, Sender))
        {
            return false;
        }

        _asked.Remove(Sender);

        // Closed while the announcement is taken in, so that its waits all queue before any is granted, and permits a
        // re-announcement no longer claims are not granted before those it claims are counted.
        var open = _gate.IsOpen;
        _gate.Close();
        if (_agents.TryGetValue(Sender, out var agent))
        {
            Reconcile(agent, message);
        }
        else
        {
            agent = new AgentRecord(Sender);
            _agents.Add(Sender, agent);
            Context.Watch(Sender);
        }

        HearRates(message);
        for (var i = 0; i < message.Held.Length; i++)
        {
            var held = new PermitDemand(PermitsAt(message.HeldPermits, i));
            if (agent.Held.TryAdd(message.Held[i], held))
            {
                AdoptHeld(held);
            }
        }

        agent.Block = Math.Max(0, message.BlockPermits);
        if (agent.Block > 0)
        {
            AdoptHeld(new PermitDemand(agent.Block));
        }

        if (_slots.InUse > _slots.Limit)
        {
            _log.Error("Cluster gatekeeper {0}: the members announced {1} permits held for a limit of {2}", _name, _slots.InUse, _slots.Limit);
        }

        // The newest limit first: the waits below are judged against it.
        if (message.Limit.Version > _limit.Version)
        {
            ApplyLimit(message.Limit with { Applied = message.Limit.Applied.Merge(_limit.Applied) });
        }
        else if (message.Limit.Version < _limit.Version)
        {
            Sender.Tell(_limit);
        }

        List<RemoteWaiter>? offered = null;
        for (var i = 0; i < message.PendingIds.Length; i++)
        {
            var requestId = message.PendingIds[i];
            if (!agent.Knows(requestId))
            {
                var priority = i < message.PendingPriorities.Length ? message.PendingPriorities[i] : 0;
                var mayWait = i >= message.PendingMayWait.Length || message.PendingMayWait[i];
                var waiter = new RemoteWaiter(agent, requestId, message.PendingSources[i], new PermitDemand(PermitsAt(message.PendingPermits, i), TokensAt(message.PendingTokens, i)), priority, mayWait, _replies);
                agent.Pending.Add(requestId, waiter);
                var unsent = i < message.PendingUnsent.Length && message.PendingUnsent[i];
                if (_limits.Exceeded(waiter.Demand) >= 0)
                {
                    // Accepted under a larger limit (or a node's other bounds): requeued, it would block its priority for ever.
                    (offered ??= []).Add(waiter); // refused as too large once the announcement is in
                }
                else if (mayWait && !unsent)
                {
                    _gate.Requeue(waiter);
                }
                else if (mayWait && !open)
                {
                    _newcomers.Add(waiter); // offered once the gate opens
                }
                else
                {
                    (offered ??= []).Add(waiter); // never queued: offered once the announcement is in
                }
            }
        }

        if (open)
        {
            _gate.Open();
        }

        // Refused if it exceeds a limit; else granted now if it fits and nobody ranks before it, else queued if it may wait
        // and the bound allows, else rejected; while recovering (only waiters that may not wait are offered then), always rejected.
        foreach (var waiter in offered ?? [])
        {
            _gate.Offer(waiter);
        }

        return true;
    }

    /// <summary>
    /// An agent known here re-announces itself (it followed another incarnation meanwhile, and dropped this one's
    /// replies): what it no longer announces is dropped — a lease it released (its release went to the other), a wait
    /// it withdrew (or another incarnation granted: it announces it held), its block (announced whole again) — while a
    /// wait it still announces keeps its place. A lease granted here that it announces waiting has its grant sent again:
    /// the agent dropped the grant, or it is on its way (sent after this incarnation asked again, taken after the
    /// announcement), and a second grant of a request no longer waiting is ignored. The rest of <see cref="Adopt"/>
    /// then takes the announcement as a first one, skipping what is known. Called with the gate closed, so nothing freed
    /// here is granted before the announcement is in.
    /// </summary>
    private void Reconcile(AgentRecord agent, LimiterAnnounce message)
    {
        System.Diagnostics.Debug.Assert(!_gate.IsOpen, "permits a re-announcement frees are granted only once it is in");
        _log.Info("Cluster gatekeeper {0}: agent {1} announced itself again (it followed another incarnation meanwhile)", _name, Sender.Path);
        var held = message.Held.ToHashSet();
        var pending = message.PendingIds.ToHashSet();
        foreach (var (id, lease) in agent.Held.Where(lease => !held.Contains(lease.Key)).ToList())
        {
            if (pending.Contains(id))
            {
                Sender.Tell(new RemoteGranted(_incarnation.Epoch, id, (int)_slots.InUse, _gate.Waiting) { Rates = StampRates() });
                continue;
            }

            agent.Held.Remove(id);
            _gate.Release(lease);
        }

        foreach (var (id, waiter) in agent.Pending.Where(waiter => !pending.Contains(waiter.Key)).ToList())
        {
            agent.Pending.Remove(id);
            if (!_newcomers.Remove(waiter))
            {
                _gate.Withdraw(waiter);
            }
        }

        if (agent.Block > 0)
        {
            _gate.Release(new PermitDemand(agent.Block));
            agent.Block = 0;
        }

        agent.Recalled = false; // a recall it got while following another was dropped: recalled again if contended
    }

    private static int PermitsAt(int[] permits, int index) => index < permits.Length ? permits[index] : 1;

    private static long TokensAt(long[] tokens, int index) => index < tokens.Length ? tokens[index] : 0;

    /// <summary>
    /// Counts an announced lease's permits. Its rates were spent when an earlier incarnation granted it, so an announced
    /// lease takes nothing from them, and its settle gives nothing back to them (<see cref="RemoteSettle.ChargedBy"/> names
    /// another incarnation). Booked per lease until its settle came before, a lease released unsettled stayed booked
    /// for as long as its agent lived (Review/ClusterLeftoversReviewTests).
    /// </summary>
    private void AdoptHeld(PermitDemand held)
    {
        if (_rates.Length == 0)
        {
            _gate.Adopt(held);
        }
        else
        {
            _slots.Take(held.Permits, TimeSpan.Zero);
        }
    }
}
