using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;

namespace ActorQueue.Cluster;

// A durable router's recovered items wait for their producer (round 53): a producer may have withdrawn one while no router
// ran, and says so only in its announcement (ProducerAnnounce.Withdrawn), which may come after a free worker's. Served at
// once, such an item started on that worker.
internal sealed partial class DistributedRouterActor
{
    /// <summary>
    /// Items read back from the journal, held out of the queue until their producer announces itself to this incarnation
    /// or is gone, by producer, in journal order. They count as queued (<see cref="Occupied"/>, the status, the depth).
    /// </summary>
    private readonly Dictionary<IActorRef, List<ItemEnvelope>> _held = [];

    /// <summary>The items in <see cref="_held"/>.</summary>
    private int _heldCount;

    /// <summary>
    /// How often the producers whose items are held are asked again to announce themselves: a request can be lost (a
    /// node host that holds too many, a dropped remote message), and a producer with nothing outstanding never says
    /// hello, so one ask could hold its items for as long as it lives. The agents' hello interval's order.
    /// </summary>
    internal static readonly TimeSpan HeldAskInterval = TimeSpan.FromSeconds(1);

    /// <summary>Items waiting for a worker: queued, or held until their producer announces itself.</summary>
    private int Waiting => _queue.Count + _heldCount;

    /// <summary>Holds an item read back from the journal until its producer has announced itself (<see cref="AwaitProducers"/>).</summary>
    private void Hold(ItemEnvelope envelope)
    {
        if (!_held.TryGetValue(envelope.Producer, out var items))
        {
            items = [];
            _held.Add(envelope.Producer, items);
        }

        items.Add(envelope);
        _heldCount++;
    }

    /// <summary>
    /// After the journal is read back: a producer on a node that is no member any more (removed, or the whole cluster
    /// started anew), or none (dead letters, whose watch never fires), can never announce itself, so its items are queued
    /// at once. Every other producer is watched — its <see cref="Terminated"/> (its actor stopped, or its node removed)
    /// releases its items, which still run, as every recovered item of a producer that is gone
    /// (<see cref="HandleTerminated"/>) — and asked directly to announce itself, besides the members' roll call (a
    /// producer with no item outstanding does not say hello).
    /// </summary>
    private void AwaitProducers()
    {
        if (_held.Count == 0)
        {
            return;
        }

        var members = AkkaCluster.Get(Context.System).State.Members;
        foreach (var producer in _held.Keys.ToList())
        {
            var node = producer.Path.Address;
            if (!producer.IsNobody() && (node.HasLocalScope || members.Any(member => member.Address.Equals(node))))
            {
                Context.Watch(producer);
                ((IRecoveryRequests)this).AskAgent(producer, _incarnation.Epoch); // directly: it may be no node host's agent
            }
            else
            {
                Release(producer, "is on no member node (or is none)");
            }
        }

        if (_heldCount > 0)
        {
            Timers.StartPeriodicTimer(AskHeld.Instance, AskHeld.Instance, HeldAskInterval);
            _log.Info("Distributed queue router {0}: {1} recovered item(s) of {2} producer(s) wait for their producer to announce itself (it may have withdrawn some) or to be gone",
                _name, _heldCount, _held.Count);
        }
    }

    /// <summary>Asks every producer whose items are still held, again, to announce itself (<see cref="HeldAskInterval"/>).</summary>
    private void HandleAskHeld()
    {
        foreach (var producer in _held.Keys)
        {
            ((IRecoveryRequests)this).AskAgent(producer, _incarnation.Epoch); // directly: it may be no node host's agent
        }
    }

    /// <summary>
    /// A producer announced itself: its held items go into the queue, where its withdrawals, applied next, find them before
    /// any is dispatched. (An earlier actor at its path — a node restarted at the same address names its agents again from
    /// 1 — has another uid: another producer, whose watch fires, for it is gone.)
    /// </summary>
    private void ReleaseAnnounced(IActorRef producer)
    {
        if (_held.Count != 0)
        {
            Release(producer, "announced itself");
        }
    }

    /// <summary>A producer (or another watched actor) stopped: its held items go into the queue; they still run.</summary>
    /// <returns>Whether it had items held (the caller dispatches them).</returns>
    private bool ReleaseGone(IActorRef stopped) => _held.Count != 0 && Release(stopped, "is gone");

    /// <summary>
    /// Puts <paramref name="producer"/>'s held items into the queue, merged with the queued items by journal id: in their
    /// order, and before the items accepted since (one scan of the queue, once per producer).
    /// </summary>
    /// <returns>Whether it had items held.</returns>
    private bool Release(IActorRef producer, string why)
    {
        if (!_held.Remove(producer, out var items))
        {
            return false;
        }

        _heldCount -= items.Count;
        if (_held.Count == 0)
        {
            Timers.Cancel(AskHeld.Instance);
        }

        var next = 0;
        for (var left = _queue.Count; left > 0; left--)
        {
            var queued = _queue.PopFront();
            while (next < items.Count && items[next].JournalId < queued.JournalId)
            {
                _queue.PushBack(items[next++]);
            }

            _queue.PushBack(queued);
        }

        while (next < items.Count)
        {
            _queue.PushBack(items[next++]);
        }

        _log.Info("Distributed queue router {0}: producer {1} {2}; its {3} recovered item(s) are queued", _name, producer.Path, why, items.Count);
        return true;
    }

    /// <summary>The timer's message: ask the producers whose items are held again.</summary>
    private sealed class AskHeld
    {
        public static readonly AskHeld Instance = new();
    }

    /// <summary>Every held item is in the journal, not ending, and counted.</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertHeld() =>
        System.Diagnostics.Debug.Assert(_heldCount == 0 && _held.Count == 0
            || _held.Values.Sum(items => items.Count) == _heldCount
            && _held.Values.All(items => items.All(item => _keys.ContainsKey(item.JournalId) && !_ending.ContainsKey(item.JournalId))),
            "a held item is in the journal, not ending, and counted");
}
