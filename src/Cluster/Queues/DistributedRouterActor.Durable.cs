using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// The durable mode of a distributed queue's router (<see cref="ClusterNodeOptions.QueueDurability"/>): a child
/// journal (<see cref="DistributedQueueJournalActor"/>) writes every accepted item, every hand-out and every result,
/// and a put is acknowledged only once its item is written. A new incarnation reads the journal back before it serves,
/// so the accepted items survive the loss of every node; the items its producers re-announce are recognised by their
/// producer and id and not queued twice.
/// </summary>
internal sealed partial class DistributedRouterActor
{
    /// <summary>Where the journal goes; <c>null</c> for an in-memory router.</summary>
    private readonly DistributedQueueStorage? _storage;

    /// <summary>Items being written, by journal id: queued and acknowledged once written.</summary>
    private readonly Dictionary<long, ItemEnvelope> _writing = [];

    /// <summary>The journal id of every unfinished item in the journal or being written, by its producer and the producer's id.</summary>
    private readonly Dictionary<(string Producer, long ItemId), long> _stored = [];

    /// <summary>The producer key of each journal id in <see cref="_stored"/>.</summary>
    private readonly Dictionary<long, (string Producer, long ItemId)> _keys = [];

    /// <summary>Items whose end is being written, by journal id, with the failure to report once it is (<c>null</c>: a worker told the result).</summary>
    private readonly Dictionary<long, EndReport?> _ending = [];

    /// <summary>The journal writer; <c>null</c> for an in-memory router.</summary>
    private IActorRef? _journal;

    /// <summary>Items the journal could not read back at this incarnation's start (set aside by the journal).</summary>
    private long _unreadable;

    /// <summary>Puts failed because the journal refused their acceptance.</summary>
    private long _rejectedWrites;

    /// <summary>The id the next written item gets.</summary>
    private long _nextJournalId = 1;

    /// <summary>Until the journal is read back, every message waits: the router's state must include what was accepted before.</summary>
    private void Recovering()
    {
        Receive<JournalRecovered>(HandleRecovered);
        Receive<Terminated>(message =>
        {
            if (!JournalStopped(message.ActorRef))
            {
                Stash.Stash();
            }
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void StartJournal()
    {
        _journal = Context.ActorOf(DistributedQueueJournalActor.Props(_name, _storage!), "journal");
        Context.Watch(_journal);
    }

    private void HandleRecovered(JournalRecovered recovered)
    {
        _nextJournalId = recovered.NextId;
        var provider = ((ExtendedActorSystem)Context.System).Provider;
        var producers = new Dictionary<string, IActorRef>();
        foreach (var (id, attempts, item) in recovered.Items)
        {
            if (_stored.TryGetValue(item.Key, out var first))
            {
                EndDuplicate(id, first, item);
                continue;
            }

            Remember(item.Key, id);
            if (!producers.TryGetValue(item.Producer, out var producer))
            {
                producer = provider.ResolveActorRef(item.Producer);
                producers.Add(item.Producer, producer);
            }

            // Held until its producer has announced itself, which names the items it withdrew meanwhile, or is gone: its
            // results then go to dead letters, but the item still runs (DistributedRouterActor.Held.cs).
            Hold(new ItemEnvelope(producer, item.ItemId, item.Payload, attempts + 1)
            {
                Trace = item.Trace,
                JournalId = id,
            });
        }

        _unreadable += recovered.Unreadable;
        _log.Info("Distributed queue router {0} read {1} unfinished item(s) back from its journal ({2} unreadable, set aside)", _name, recovered.Items.Count, recovered.Unreadable);
        Become(Serving);
        Stash.UnstashAll();
        BeginIncarnation();
        AwaitProducers();
    }

    /// <summary>
    /// Whether the journal holds the item or is writing it: one it holds is acknowledged again (the producer may not have
    /// heard), one being written is acknowledged when written (<see cref="HandleWritten"/>); neither is stored twice.
    /// </summary>
    private bool KnownStored(IActorRef producer, long itemId)
    {
        if (!_stored.TryGetValue(StoreKey(producer, itemId), out var stored))
        {
            return false;
        }

        if (!_writing.ContainsKey(stored))
        {
            Acknowledge(producer, itemId);
        }

        return true;
    }

    private static (string Producer, long ItemId) StoreKey(IActorRef producer, long itemId) =>
        (Akka.Serialization.Serialization.SerializedActorPath(producer), itemId);

    /// <summary>
    /// A second unfinished record of an item the journal holds already (its producer and id): the item is queued once, by
    /// its older record, and this one is ended (its <see cref="JournalEnded"/> is ignored). Before, the second key threw in
    /// <see cref="Remember"/> and the router restarted for ever without serving.
    /// </summary>
    private void EndDuplicate(long id, long first, StoredClusterItem item)
    {
        _log.Warning("Distributed queue router {0}: journal record {1} is item {2} of {3} again (record {4}); queued once, the second record ended",
            _name, id, item.ItemId, item.Producer, first);
        _journal!.Tell(new JournalFinished(id));
    }

    /// <summary>Writes an item (not known: <see cref="Known"/>); it is queued and acknowledged when written (<see cref="HandleWritten"/>).</summary>
    private void Store(IActorRef producer, long itemId, string payload, ItemTrace? trace)
    {
        var key = StoreKey(producer, itemId);
        System.Diagnostics.Debug.Assert(!_stored.ContainsKey(key), "an item the journal holds or writes is known, never stored twice");
        var id = _nextJournalId++;
        Remember(key, id);
        _writing.Add(id, new ItemEnvelope(producer, itemId, payload, Deliveries: 1) { Trace = trace, JournalId = id });
        _journal!.Tell(new JournalAccept(id, new StoredClusterItem(key.Item1, itemId, payload, trace)));
    }

    private void HandleWritten(JournalWritten written)
    {
        if (_writing.Remove(written.Id, out var envelope))
        {
            if (!WithdrawnWhenWritten(envelope))
            {
                Queue(envelope);
            }

            Dispatch();
        }
    }

    /// <summary>
    /// The journal refused an item's acceptance: it is not stored and will not run. Its put fails with the reason (the
    /// producer's caller gets a failed result saying why; it never ran: 0 deliveries) and its space frees; the router
    /// goes on. Its key is forgotten: the same put sent again is tried again.
    /// </summary>
    private void HandleRejected(JournalRejected rejected)
    {
        if (!_writing.Remove(rejected.Id, out var envelope))
        {
            return;
        }

        if (_keys.Remove(rejected.Id, out var key))
        {
            _stored.Remove(key);
        }

        Unmark(envelope); // it fails: there is nothing left to withdraw
        _rejectedWrites++;
        _log.Error("Distributed queue router {0}: the journal refused item {1} of {2}; its put fails: {3}", _name, envelope.ItemId, envelope.Producer.Path, rejected.Reason);
        envelope.Producer.Tell(new ItemDone(envelope.ItemId, 0, false, null,
            $"The distributed queue's journal refused to store the item: {rejected.Reason}", Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString()));
        Dispatch();
    }

    private void Remember((string Producer, long ItemId) key, long id)
    {
        _stored.Add(key, id);
        _keys.Add(id, key);
    }

    /// <summary>Journals a hand-out, so a recovered item knows its delivery count.</summary>
    private void Started(ItemEnvelope envelope)
    {
        if (_journal is not null)
        {
            _journal.Tell(new JournalStarted(envelope.JournalId));
        }
    }

    /// <summary>
    /// An item has its result (or is to be reported failed or withdrawn: <paramref name="report"/>, an
    /// <see cref="ItemDone"/> or a <see cref="WithdrawAnswer"/>). A memory router forgets it (a producer that announces it
    /// again has not heard yet) and reports the failure at once. A durable router journals its end, so it never runs
    /// again, and until that end is written still knows it (a re-announcement is acknowledged, not stored under a new id)
    /// and holds the failure back (<see cref="HandleEnded"/>): a caller told "failed" or "withdrawn" must not see the item
    /// run, and a router lost before the end lands leaves it unfinished for the next, which runs it.
    /// </summary>
    private void Finished(ItemEnvelope envelope, IClusterMessage? report = null)
    {
        _unfinished.Remove((envelope.Producer, envelope.ItemId));
        Unmark(envelope);
        if (_journal is null)
        {
            if (report is not null)
            {
                envelope.Producer.Tell(report);
            }

            return;
        }

        System.Diagnostics.Debug.Assert(_keys.ContainsKey(envelope.JournalId) && !_ending.ContainsKey(envelope.JournalId), "an item at a worker is in the journal and ends once");
        if (_keys.ContainsKey(envelope.JournalId) && _ending.TryAdd(envelope.JournalId, report is null ? null : new EndReport(envelope.Producer, report)))
        {
            _journal.Tell(new JournalFinished(envelope.JournalId));
        }
    }

    /// <summary>An item's end is written: it is forgotten, and a failure held back goes to its producer now.</summary>
    private void HandleEnded(JournalEnded ended)
    {
        if (!_ending.Remove(ended.Id, out var report))
        {
            return; // the end of a duplicate record, which this router never queued
        }

        if (_keys.Remove(ended.Id, out var key))
        {
            _stored.Remove(key);
        }

        report?.Producer.Tell(report.Done);
    }

    /// <summary>A journal that stopped (its store failed) stops the router: the next message creates one that reads the journal back.</summary>
    private bool JournalStopped(IActorRef stopped)
    {
        if (_journal is null || !stopped.Equals(_journal))
        {
            return false;
        }

        _log.Error("Distributed queue router {0}: its journal stopped (see the journal's error); the router stops, and the next message starts one that reads the journal back", _name);
        Context.Stop(Self);
        return true;
    }

    /// <summary>A failure to tell an item's producer once the item's end is written.</summary>
    private sealed record EndReport(IActorRef Producer, IClusterMessage Done);
}
