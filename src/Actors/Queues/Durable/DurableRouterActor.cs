using System.Text.Json;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Persistence;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a durable queue: the same facade messages and <see cref="QueueProtocol"/> as the in-memory router,
/// with every change journaled on Akka.Persistence. A put is answered only once its <see cref="ItemAccepted"/> is
/// written; puts that arrive together are written together (<c>PersistAsync</c>: the journal batches them). Starts,
/// completions, retries and dead letters are journaled too, and the book (<see cref="DurableBook{T}"/>) is rebuilt from
/// the last snapshot and the events after it, so after a crash every unfinished item runs again and no finished one
/// does. Workers are tasks the router starts, at most the worker count at once; the lifecycle is the actor's behaviour
/// (<c>DurableRouterActor.Lifecycle.cs</c>).
/// </summary>
internal sealed partial class DurableRouterActor<T> : ReceivePersistentActor, IWithTimers
{
    private const string StopTimerKey = "stop-timeout";

    private readonly string _persistenceId;
    private readonly int _capacity;
    private readonly QueueDurability _durability;
    private readonly TimeProvider _clock;
    private readonly QueueTelemetry _telemetry;
    private readonly QueueCounters _counters;

    /// <summary>Completed once recovery ends (faulted with <see cref="QueueStorageException"/> when it fails); the facade's start awaits it.</summary>
    private readonly TaskCompletionSource _recovered;

    private readonly DurableBook<T> _book = new();
    private readonly LifecycleWaiters _waiters = new();

    /// <summary>Puts being written, by their item's id: answered in the write's callback, or failed if the journal stops.</summary>
    private readonly Dictionary<long, PendingPut<T>> _writing = [];

    /// <summary>Puts waiting for space, oldest first; each with a timer unless it waits without limit.</summary>
    private readonly WaiterQueue<PendingPut<T>> _waitingPuts = new();

    /// <summary>Getters waiting for an item, oldest first.</summary>
    private readonly WaiterQueue<GetRequest<T>> _getters = new();

    /// <summary>Items taken by getters, oldest first: a <c>TaskDone</c> finishes the oldest.</summary>
    private readonly Queue<long> _taken = new();

    private readonly Random _jitter = new();

    private QueueStatus _status = QueueStatus.Idle;

    private WorkerSpec<T>? _spec;

    /// <summary>Worker tasks running now.</summary>
    private int _busy;

    /// <summary>Cancels the running work when the stop timeout runs out; a new one for each start.</summary>
    private CancellationTokenSource _runCancellation = new();

    private long _backpressure;

    private int _eventsSinceSnapshot;

    private bool _snapshotting;

    /// <summary>Tells the router when the next delayed item is due, on <see cref="QueueDurability.Clock"/>.</summary>
    private ITimer? _dueTimer;

    private long _dueTimerTicks;

    /// <summary>Frees the queue's name when the router stops, so a queue of that name may be opened again.</summary>
    private readonly Action _release;

    /// <summary>Whether the name is freed: only once, so this router never frees the claim of the queue that took the name next.</summary>
    private bool _released;

    public DurableRouterActor(string persistenceId, int capacity, QueueDurability durability, (string Journal, string Snapshot) plugins,
                              QueueTelemetry telemetry, QueueCounters counters, TaskCompletionSource recovered, Action released)
    {
        _release = released;
        _persistenceId = persistenceId;
        _capacity = capacity;
        _durability = durability;
        _clock = durability.Clock;
        _telemetry = telemetry;
        _counters = counters;
        _recovered = recovered;
        JournalPluginId = plugins.Journal;
        SnapshotPluginId = plugins.Snapshot;

        Recover<SnapshotOffer>(offer => _book.Apply(DurableCodec.Decode((byte[])offer.Snapshot)));
        Recover<byte[]>(record => _book.Apply(DurableCodec.Decode(record)));
        Recover<RecoveryCompleted>(_ => Recovered());
        Idle();
    }

    /// <inheritdoc />
    public override string PersistenceId => _persistenceId;

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string persistenceId, int capacity, QueueDurability durability, (string Journal, string Snapshot) plugins,
                              QueueTelemetry telemetry, QueueCounters counters, TaskCompletionSource recovered, Action released) =>
        Akka.Actor.Props.Create(() => new DurableRouterActor<T>(persistenceId, capacity, durability, plugins, telemetry, counters, recovered, released));

    /// <inheritdoc />
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _recovered.TrySetException(new QueueStorageException($"Durable queue '{_telemetry.QueueName}' could not recover from its journal: {reason.Message}", reason));
        base.OnRecoveryFailure(reason, message);
    }

    /// <inheritdoc />
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        if (@event is byte[] record && DurableCodec.Decode(record) is ItemAccepted accepted && _writing.Remove(accepted.Id, out var put))
        {
            put.Failed(new QueueStorageException($"Durable queue '{_telemetry.QueueName}' could not store the item: {cause.Message}", cause));
        }
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // A journal that failed stops this actor: every put still being written learns it was not stored.
        var error = new QueueStorageException($"Durable queue '{_telemetry.QueueName}' stopped before the item was stored");
        foreach (var put in _writing.Values)
        {
            put.Failed(error);
        }

        _writing.Clear();
        _recovered.TrySetException(error);
        RefuseWaiting(QueueStatus.Stopped, QueueErrors.Disposed());
        _waiters.FailJoins(QueueErrors.Disposed());
        _waiters.CompleteStops();
        _runCancellation.Cancel();
        _dueTimer?.Dispose();
        ReleaseName();
        base.PostStop();
    }

    /// <summary>Frees the queue's name: its journal is done with (the last stop is answered, or the router stopped).</summary>
    private void ReleaseName()
    {
        if (!_released)
        {
            _released = true;
            _release();
        }
    }

    private void Recovered()
    {
        _recovered.TrySetResult();
        Publish();
    }

    /// <summary>A put while processing: written at once when nothing waits ahead of it and there is space, else it waits or meets backpressure.</summary>
    private void Offer(PendingPut<T>? put)
    {
        if (put is null || put.IsAbandoned)
        {
            return;
        }

        if (_waitingPuts.IsEmpty && HasSpace())
        {
            Store(put);
            return;
        }

        if (put.Timeout == TimeSpan.Zero)
        {
            Backpressure(put);
            return;
        }

        _waitingPuts.Enqueue(put);
        if (put.Timeout != Timeout.InfiniteTimeSpan)
        {
            Timers.StartSingleTimer(put, new PutTimedOut<T>(put), put.Timeout);
        }
    }

    private bool HasSpace() => _book.Size + _writing.Count < _capacity;

    /// <summary>Journals the put's item; the put is answered in the callback, once the event is written.</summary>
    private void Store(PendingPut<T> put)
    {
        byte[] payload;
        try
        {
            payload = JsonSerializer.SerializeToUtf8Bytes(put.Item);
        }
        catch (Exception error) when (error is NotSupportedException or JsonException or InvalidOperationException)
        {
            put.Failed(new ArgumentException($"The item cannot be stored: System.Text.Json cannot serialise {typeof(T).FullName}: {error.Message}", "item", error));
            return;
        }

        var accepted = new ItemAccepted(_book.ReserveId(), put.Priority, put.NotBefore?.UtcTicks ?? 0, payload);
        _writing.Add(accepted.Id, put);
        Write(accepted, written =>
        {
            _writing.Remove(written.Id);
            _book.Accepted(written, put.Item, hasItem: true);
            Journaled();
            Publish();
            if (!put.TryAccept())
            {
                Record(new ItemRemoved(written.Id, RemovalReason.Withdrawn));
                return;
            }

            Pump();
        });
    }

    private void AddBatch(BatchPut<T> batch)
    {
        var remaining = batch.Items.Count;
        if (remaining == 0)
        {
            batch.Completion.TrySetResult(true);
            return;
        }

        var events = batch.Items.Select(item => new ItemAccepted(_book.ReserveId(), 0, 0, JsonSerializer.SerializeToUtf8Bytes(item))).ToList();
        var index = 0;
        WriteAll(events, written =>
        {
            _book.Accepted(written, batch.Items[index++], hasItem: true);
            Journaled();
            if (--remaining == 0)
            {
                Publish();
                batch.Completion.TrySetResult(true);
                Pump();
            }
        });
    }

    /// <summary>Journals one event as its compact bytes; <paramref name="written"/> runs once it is stored (puts arriving together share a write).</summary>
    private void Write<TEvent>(TEvent message, Action<TEvent> written)
        where TEvent : IDurableQueueMessage =>
        PersistAsync(DurableCodec.Encode(message), _ => written(message));

    /// <summary>Journals several events; <paramref name="written"/> runs for each, in order, once it is stored.</summary>
    private void WriteAll<TEvent>(IReadOnlyList<TEvent> messages, Action<TEvent> written)
        where TEvent : IDurableQueueMessage
    {
        var next = 0;
        PersistAllAsync(messages.Select(message => DurableCodec.Encode(message)), _ => written(messages[next++]));
    }

    /// <summary>Journals an event and applies it to the book once written, then (unless it only counts a delivery) moves items on.</summary>
    private void Record<TEvent>(TEvent message)
        where TEvent : IDurableQueueMessage =>
        Write(message, written =>
        {
            _book.Apply(written);
            Journaled();
            if (written is not ItemStarted)
            {
                AfterChange();
            }
        });

    private void AfterChange()
    {
        Pump();
        _waiters.Settled(_book.Unfinished + _writing.Count);
        CheckStopped();
    }

    /// <summary>Counts an event written; after <see cref="QueueDurability.SnapshotEvery"/> of them the book is snapshotted.</summary>
    private void Journaled()
    {
        if (++_eventsSinceSnapshot < _durability.SnapshotEvery || _snapshotting)
        {
            return;
        }

        _eventsSinceSnapshot = 0;
        _snapshotting = true;
        SaveSnapshot(DurableCodec.Encode(_book.Snapshot()));
    }

    /// <summary>The snapshot is stored: the events and snapshots before it are no longer needed.</summary>
    private void SnapshotSaved(SaveSnapshotSuccess saved)
    {
        _snapshotting = false;
        DeleteMessages(saved.Metadata.SequenceNr);
        DeleteSnapshots(new SnapshotSelectionCriteria(saved.Metadata.SequenceNr - 1));
    }

    /// <summary>Arms the clock's timer for the earliest delayed item, if it is not armed for that time already.</summary>
    private void ScheduleDue()
    {
        if (_book.NextDueTicks is not { } due || _status != QueueStatus.Processing)
        {
            return;
        }

        if (_dueTimer is not null && _dueTimerTicks == due)
        {
            return;
        }

        _dueTimer?.Dispose();
        _dueTimerTicks = due;
        var self = Self;
        var wait = TimeSpan.FromTicks(Math.Max(0, due - _clock.GetUtcNow().UtcTicks));
        _dueTimer = _clock.CreateTimer(static state => ((IActorRef)state!).Tell(DueTick.Instance), self, wait, Timeout.InfiniteTimeSpan);
    }

    private void HandleDue()
    {
        _dueTimer?.Dispose();
        _dueTimer = null;
        Pump();
    }

    private void Backpressure(PendingPut<T> put)
    {
        _backpressure++;
        _telemetry.Backpressure(_capacity, put.Timeout);
        Publish(); // before the caller hears: a refused put then reads its backpressure event in Metrics, as with the in-memory router
        put.Full();
    }

    private void TimedOut(PendingPut<T> put)
    {
        if (_waitingPuts.Remove(put))
        {
            Backpressure(put);
        }
    }

    private T Decode(byte[] payload) => JsonSerializer.Deserialize<T>(payload)!;

    private void Publish() =>
        _counters.Publish(_status, _book.Size, _status == QueueStatus.Processing ? _spec?.Count ?? 0 : 0, _book.Metrics with { BackpressureEvents = _backpressure });
}
