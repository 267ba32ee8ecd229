using ActorQueue.Actors;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace ActorQueue.Cluster;

/// <summary>
/// The journal of a durable distributed queue, a child of its router: it writes what the router tells it (an item
/// accepted, handed to a worker, finished) on Akka.Persistence and answers an acceptance only once it is written. It
/// keeps the queue's unfinished items in a <see cref="DurableBook{T}"/> (the durable queue's own state machine and
/// codec, so the records on disk have the same compact form), snapshots it every
/// <see cref="QueueDurability.SnapshotEvery"/> events and deletes what the snapshot covers, one storage operation at a
/// time and never beside a write (<c>DistributedQueueJournalActor.Housekeeping.cs</c>). After a recovery it hands the
/// router every unfinished item, oldest first.
/// </summary>
internal sealed partial class DistributedQueueJournalActor : ReceivePersistentActor
{
    private readonly string _persistenceId;

    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>
    /// Every accepted item not finished yet, as written; its hand-outs count as tries (<c>countsStarts</c>), so a recovered
    /// item's delivery is hand-outs + 1 (<c>max-deliveries</c>, <c>ItemResult.Deliveries</c>).
    /// </summary>
    private readonly DurableBook<StoredClusterItem> _book = new(countsStarts: true);

    /// <summary>The snapshot and the deletions after it, one storage operation at a time (<c>DistributedQueueJournalActor.Housekeeping.cs</c>).</summary>
    private readonly SnapshotHousekeeping _housekeeping;

    public DistributedQueueJournalActor(string queueName, DistributedQueueStorage storage)
    {
        _persistenceId = "actorqueue-distributed-queue-" + queueName;
        _housekeeping = new SnapshotHousekeeping(storage.Durability.SnapshotEvery, this);
        JournalPluginId = storage.Journal;
        SnapshotPluginId = storage.Snapshot;

        Recover<SnapshotOffer>(offer => DurableCodec.Replay((byte[])offer.Snapshot, _book));
        Recover<byte[]>(record => DurableCodec.Replay(record, _book));
        Recover<RecoveryCompleted>(_ => Recovered());

        Command<JournalAccept>(HandleAccept);
        Command<JournalStarted>(started => Write(new ItemStarted(started.Id), _book.Started));
        Command<JournalFinished>(HandleFinished);
        Command<WriteRefused>(_ => Answered());
        _housekeeping.Register((type, handler) => Command(type, handler, null));
    }

    /// <inheritdoc />
    public override string PersistenceId => _persistenceId;

    public static Props Props(string queueName, DistributedQueueStorage storage) =>
        Akka.Actor.Props.Create(() => new DistributedQueueJournalActor(queueName, storage));

    /// <inheritdoc />
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Error(reason, "Distributed queue journal {0} could not recover; the router stops and is created again on the next message", _persistenceId);
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>
    /// A write the journal refused (the event was not stored; a failed write stops the actor anyway). A refused
    /// acceptance is told to the router (<see cref="JournalRejected"/>), which fails that put with the reason and goes on:
    /// a rejection concerns the event (too large, not serializable), so the next router's journal would refuse it too, and
    /// stopping made the producer re-announce it for ever, unanswered. Any other refused write (a hand-out, an end) stops
    /// the journal and so the router, as a failed one: the next router reads the journal back and runs the item again.
    /// </summary>
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        if (@event is byte[] record && DurableCodec.Decode(record) is ItemAccepted accepted)
        {
            _log.Error(cause, "Distributed queue journal {0}: the acceptance of item {1} was refused; its put fails with the reason", _persistenceId, accepted.Id);
            Context.Parent.Tell(new JournalRejected(accepted.Id, $"{cause.GetType().FullName}: {cause.Message}"));
            Self.Tell(WriteRefused.Instance); // its callback never comes; answered as a command, so Akka sends what that flushes
            return;
        }

        _log.Error(cause, "Distributed queue journal {0}: a write was refused; the journal stops, and the router with it", _persistenceId);
        Context.Stop(Self);
    }

    /// <summary>An item is acknowledged to its router only in the write's callback: a put is answered after its event is stored.</summary>
    private void HandleAccept(JournalAccept accept)
    {
        var router = Sender;
        Write(new ItemAccepted(accept.Id, 0, 0, StoredClusterItem.Encode(accept.Item)), written =>
        {
            _book.Accepted(written, accept.Item, hasItem: true);
            router.Tell(new JournalWritten(written.Id));
        });
    }

    /// <summary>An item's end is answered to its router only in the write's callback: a failure is reported after its end is stored.</summary>
    private void HandleFinished(JournalFinished finished)
    {
        var router = Sender;
        Write(new ItemCompleted(finished.Id), written =>
        {
            _book.Completed(written);
            router.Tell(new JournalEnded(written.Id));
        });
    }

    /// <summary>
    /// Hands the router the unfinished items, oldest first, with how often each was handed to a worker. One whose bytes
    /// cannot be read back (no worker could run it, no producer can be told: its producer is in those bytes) is set aside:
    /// logged as an error, dead-lettered in the journal with the reason (its bytes kept, never read back again) and
    /// counted (<see cref="JournalRecovered.Unreadable"/>). Before, its decode threw here and the journal restarted in a
    /// tight loop while the router waited for ever.
    /// </summary>
    private void Recovered()
    {
        var items = new List<RecoveredItem>();
        var unreadable = 0;
        foreach (var stored in _book.Snapshot().Items.Where(item => !item.Dead))
        {
            try
            {
                items.Add(new RecoveredItem(stored.Id, stored.Attempts, StoredClusterItem.Decode(stored.Payload.ToArray())));
            }
            catch (Exception error)
            {
                unreadable++;
                var reason = $"The stored item cannot be read back: {error.GetType().FullName}: {error.Message}";
                _log.Error(error, "Distributed queue journal {0}: item {1} cannot be read back; dead-lettered in the journal and not run: {2}", _persistenceId, stored.Id, reason);
                Write(new ItemDeadLettered(stored.Id, reason), _book.DeadLettered);
            }
        }

        Context.Parent.Tell(new JournalRecovered(_book.NextId, items) { Unreadable = unreadable });
    }
}

/// <summary>Where a node's durable distributed queues keep their journal: the durability and its plugin ids, ready in the node's system.</summary>
internal sealed record DistributedQueueStorage(QueueDurability Durability, string Journal, string Snapshot);

/// <summary>The router → its journal: write item <see cref="Id"/>; answered with <see cref="JournalWritten"/>.</summary>
internal sealed record JournalAccept(long Id, StoredClusterItem Item);

/// <summary>The journal → the router: item <see cref="Id"/> is stored; its put may be acknowledged.</summary>
internal sealed record JournalWritten(long Id);

/// <summary>The journal → the router: item <see cref="Id"/>'s acceptance was refused by the journal (<see cref="Reason"/>); it is not stored.</summary>
internal sealed record JournalRejected(long Id, string Reason);

/// <summary>The router → its journal: item <see cref="Id"/> was handed to a worker.</summary>
internal sealed record JournalStarted(long Id);

/// <summary>The router → its journal: item <see cref="Id"/> has its result (or is to be reported failed); it never runs again. Answered with <see cref="JournalEnded"/>.</summary>
internal sealed record JournalFinished(long Id);

/// <summary>The journal → the router: item <see cref="Id"/>'s end is stored; a failure held back may be reported.</summary>
internal sealed record JournalEnded(long Id);

/// <summary>The journal → the router after recovery: the next free id and every unfinished item, oldest first.</summary>
internal sealed record JournalRecovered(long NextId, IReadOnlyList<RecoveredItem> Items)
{
    /// <summary>Items that could not be read back: dead-lettered in the journal, not among <see cref="Items"/>.</summary>
    public int Unreadable { get; init; }
}

/// <summary>An unfinished item read back from the journal, with how often it was handed to a worker.</summary>
internal sealed record RecoveredItem(long Id, int Attempts, StoredClusterItem Item);
