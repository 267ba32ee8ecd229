using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;

namespace ActorQueue.Cluster;

// A router taking withdrawals (WithdrawItem, or the withdrawn items of an announcement): an item no worker runs is taken
// out and ends withdrawn; one a worker runs is marked, runs to its end, and ends withdrawn if its worker is lost.
internal sealed partial class DistributedRouterActor
{
    /// <summary>
    /// Items withdrawn by their producer while a worker ran them, or while a durable router wrote them: such an item is
    /// not run again when its worker is lost, and not queued once written; it ends withdrawn instead.
    /// </summary>
    private readonly HashSet<(IActorRef Producer, long ItemId)> _withdrawing = [];

    /// <summary>Items this incarnation withdrew.</summary>
    private long _withdrawn;

    /// <summary>This node's address, as a withdrawn item's result names it.</summary>
    private string SelfNode => AkkaCluster.Get(Context.System).SelfAddress.ToString();

    /// <summary>
    /// A producer withdraws one of its items. The router knows items by their producer: the sender, so a producer can
    /// withdraw only its own (docs/SECURITY.md). The space an item frees lets a waiting put in.
    /// </summary>
    private void HandleWithdraw(WithdrawItem message)
    {
        if (!_incarnation.Admit(message.Epoch, Sender))
        {
            return; // the producer is asked to announce itself, and names the item there
        }

        Withdraw(Sender, message.ItemId);
        Dispatch();
    }

    /// <summary>
    /// Withdraws an item of <paramref name="producer"/>: a put waiting for space or a queued item (a handed-back one
    /// included) ends withdrawn; one at a worker is answered not withdrawn and marked, so it is not run again if that worker
    /// is lost; one being written is marked and ends withdrawn once written; one withdrawn already whose end is being
    /// written is answered when it is (withdrawn); one this router does not know (its result is on its way, or its end as
    /// a result is being written) is answered not withdrawn.
    /// </summary>
    private void Withdraw(IActorRef producer, long itemId)
    {
        if (_waiting.Remove((producer, itemId), out var waiting))
        {
            _waitingPuts.Remove(waiting);
            Timers.Cancel(waiting);
            _withdrawn++;
            producer.Tell(new WithdrawAnswer(itemId, true, 0, SelfNode));
            return;
        }

        if (TakeQueued(producer, itemId) is { } queued)
        {
            Withdrawn(queued, queued.Deliveries - 1);
            return;
        }

        if (Writing(producer, itemId))
        {
            _withdrawing.Add((producer, itemId)); // answered once written (HandleWritten) and ended
            return;
        }

        if (Running(producer, itemId))
        {
            _withdrawing.Add((producer, itemId));
        }
        else if (EndingWithdrawn(producer, itemId))
        {
            return; // withdrawn already, its end being written: that answer, once written, tells every caller "withdrawn"
        }

        producer.Tell(new WithdrawAnswer(itemId, false, 0, SelfNode));
    }

    /// <summary>
    /// Ends an item withdrawn (handed to workers <paramref name="deliveries"/> times before): forgotten, and its producer
    /// told — by a durable router once the end is written (<see cref="Finished"/>), so a later router never runs it.
    /// </summary>
    private void Withdrawn(ItemEnvelope envelope, int deliveries)
    {
        _withdrawn++;
        _log.Info("Distributed queue {0}: item {1} of {2} is withdrawn by its producer ({3} earlier deliveries)", _name, envelope.ItemId, envelope.Producer.Path, deliveries);
        Finished(envelope, new WithdrawAnswer(envelope.ItemId, true, deliveries, SelfNode));
    }

    /// <summary>Whether a worker lost with <paramref name="inFlight"/> must not hand it on: its producer withdrew it, and it ends so.</summary>
    /// <remarks>
    /// The worker may have finished it: its result goes straight to the producer, unordered with this answer (two
    /// senders), or is lost with its node. The producer takes whichever comes first; a result after this answer is a
    /// duplicate, and the item's end says withdrawn with its deliveries (≥ 1: it may have run). Nothing here can know
    /// better without a timeout (docs/ARCHITECTURE.md, "Withdrawal").
    /// </remarks>
    private bool WithdrawnAtLoss(ItemEnvelope inFlight)
    {
        if (!IsWithdrawing(inFlight))
        {
            return false;
        }

        Withdrawn(inFlight, inFlight.Deliveries);
        return true;
    }

    /// <summary>Whether a written item was withdrawn meanwhile: it is acknowledged (its put was accepted) and ends withdrawn, never queued.</summary>
    private bool WithdrawnWhenWritten(ItemEnvelope written)
    {
        if (!IsWithdrawing(written))
        {
            return false;
        }

        Acknowledge(written.Producer, written.ItemId);
        Withdrawn(written, 0);
        return true;
    }

    /// <summary>Whether <paramref name="envelope"/>'s producer withdrew it while a worker ran it or it was written (no hashing while none is marked: every item asks).</summary>
    private bool IsWithdrawing(ItemEnvelope envelope) => _withdrawing.Count != 0 && _withdrawing.Contains((envelope.Producer, envelope.ItemId));

    /// <summary>Drops <paramref name="envelope"/>'s withdrawal mark as it ends (every item ends through here: no hashing while none is marked).</summary>
    private void Unmark(ItemEnvelope envelope)
    {
        if (_withdrawing.Count != 0)
        {
            _withdrawing.Remove((envelope.Producer, envelope.ItemId));
        }
    }

    /// <summary>Takes the item out of the queue, keeping the others' order (a scan: withdrawals are rare).</summary>
    private ItemEnvelope? TakeQueued(IActorRef producer, long itemId)
    {
        ItemEnvelope? taken = null;
        for (var left = _queue.Count; left > 0; left--)
        {
            var envelope = _queue.PopFront();
            if (taken is null && envelope.ItemId == itemId && envelope.Producer.Equals(producer))
            {
                taken = envelope;
            }
            else
            {
                _queue.PushBack(envelope);
            }
        }

        return taken;
    }

    private bool Running(IActorRef producer, long itemId) =>
        _workers.Values.Any(item => item is not null && item.ItemId == itemId && item.Producer.Equals(producer));

    /// <summary>
    /// Whether a durable router is writing the item's end as a withdrawal (<see cref="Withdrawn"/>, its answer held back):
    /// a second withdrawal of it (a second caller, or the announcement naming it) is not answered "not withdrawn", which
    /// the producer would give every caller waiting, the first included, while the item ends withdrawn.
    /// </summary>
    private bool EndingWithdrawn(IActorRef producer, long itemId) =>
        _storage is not null && _stored.TryGetValue(StoreKey(producer, itemId), out var id)
        && _ending.TryGetValue(id, out var report) && report?.Done is WithdrawAnswer { Withdrawn: true };

    private bool Writing(IActorRef producer, long itemId) =>
        _storage is not null && _stored.TryGetValue(StoreKey(producer, itemId), out var id) && _writing.ContainsKey(id);

    /// <summary>Every item marked withdrawn is at a worker or being written (it leaves the mark when it ends, <see cref="Finished"/>).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertWithdrawing() =>
        System.Diagnostics.Debug.Assert(_withdrawing.All(key => Running(key.Producer, key.ItemId) || Writing(key.Producer, key.ItemId)),
            "an item marked withdrawn is at a worker or being written");
}
