using System.Diagnostics;
using System.Text.Json;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Persistence;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a durable queue: the same facade messages and <see cref="QueueProtocol"/> as the in-memory router,
/// with every change journaled on Akka.Persistence. A put is answered only once its <see cref="ItemAccepted"/> is
/// written; everything that happens while one write is under way (puts, completions, retries, dead letters) goes into
/// the next, as one record (<c>DurableRouterActor.Writing.cs</c>). Starts are not journaled: the book
/// (<see cref="DurableBook{T}"/>) is rebuilt from the last snapshot and the events after it, and every accepted item
/// without a journaled end runs again, so after a crash no unfinished item is lost and no finished one runs again. Workers are tasks the router starts, at most the worker count at once; the lifecycle is the actor's behaviour
/// (<c>DurableRouterActor.Lifecycle.cs</c>).
/// </summary>
internal sealed partial class DurableRouterActor<T> : ReceivePersistentActor, IWithTimers
{

    private readonly string _persistenceId;
    private readonly int _capacity;
    private readonly QueueDurability _durability;
    private readonly TimeProvider _clock;
    private readonly QueueTelemetry _telemetry;
    private readonly QueueCounters _counters;

    /// <summary>Completed once recovery ends (faulted with <see cref="QueueStorageException"/> when it fails); the facade's start awaits it.</summary>
    private readonly TaskCompletionSource _recovered;

    private readonly DurableBook<T> _book = new();
    private readonly LifecycleWaiters _waiters;

    /// <summary>Puts being written, by their item's id: answered in the write's callback, or failed if the journal stops.</summary>
    private readonly Dictionary<long, PendingPut<T>> _writing = [];

    /// <summary>
    /// The producers' trace contexts of the items that carried one, by id, until the item's last try ends. Kept in memory
    /// only: after a restart an item runs under no span of its producer's (its trace ended with the process).
    /// </summary>
    private readonly Dictionary<long, ActivityContext> _traces;

    /// <summary>Puts waiting for space, oldest first; each with a timer unless it waits without limit.</summary>
    private readonly WaiterQueue<PendingPut<T>> _waitingPuts = new();

    /// <summary>Getters waiting for an item, oldest first.</summary>
    private readonly WaiterQueue<GetRequest<T>> _getters;

    /// <summary>Dead letters whose requeue or purge is being written: a second change does not take them again.</summary>
    private readonly HashSet<long> _deadChanging = [];

    /// <summary>Items taken by getters, oldest first: a <c>TaskDone</c> finishes the oldest.</summary>
    private readonly Queue<long> _taken = new();

    private readonly Random _jitter = new();

    private QueueStatus _status = QueueStatus.Idle;

    private WorkerSpec<T>? _spec;

    /// <summary>Worker tasks running now.</summary>
    private int _busy;

    /// <summary>The stop under way: its grace period (its deadline handed to the next instance on a restart), and a disposal's wait for the tries cancelled after it.</summary>
    private readonly StopGrace _grace;

    /// <summary>A disposal stopped waiting for the running tries and the journal (<c>Abandon</c>): the router stopped itself, or lingers detached.</summary>
    private bool _abandoned;

    /// <summary>Cancels the running work when the stop timeout runs out; a new one for each start.</summary>
    private CancellationTokenSource _runCancellation;

    private long _backpressure;

    /// <summary>The snapshot and the deletions after it, one storage operation at a time (<c>DurableRouterActor.Housekeeping.cs</c>).</summary>
    private readonly SnapshotHousekeeping _housekeeping;

    /// <summary>Tells the router when the next delayed item is due, on <see cref="QueueDurability.Clock"/> (UTC ticks as a time span).</summary>
    private readonly WakeTimer _dueTimer;

    /// <summary>Frees the queue's name when the router stops, so a queue of that name may be opened again.</summary>
    private readonly Action _release;

    /// <summary>This instance stops for a restart: the router lives on, and keeps the name.</summary>
    private bool _restarting;

    /// <summary>Whether the name is freed: only once, so this router never frees the claim of the queue that took the name next.</summary>
    private bool _released;

    public DurableRouterActor(string persistenceId, int capacity, QueueDurability durability, (string Journal, string Snapshot) plugins,
                              QueueTelemetry telemetry, QueueCounters counters, TaskCompletionSource recovered, Action released,
                              DurableHandOver<T> handOver)
    {
        _handOver = handOver;
        _handed = handOver.Take();
        var self = Self;
        _waiters = _handed?.Waiters ?? new LifecycleWaiters(Context.System, () => self.Tell(DisposalOverdue.Instance, ActorRefs.NoSender));
        _grace = new StopGrace(_waiters, Context.System.Scheduler);
        _getters = _handed?.Getters ?? new WaiterQueue<GetRequest<T>>();
        _traces = _handed?.Traces ?? [];
        _runCancellation = _handed?.RunCancellation ?? new CancellationTokenSource();
        _release = released;
        _persistenceId = persistenceId;
        _capacity = capacity;
        _durability = durability;
        _housekeeping = new SnapshotHousekeeping(durability.SnapshotEvery, this);
        _clock = durability.Clock;
        _dueTimer = new WakeTimer(_clock, Self, () => TimeSpan.FromTicks(_clock.GetUtcNow().UtcTicks), DueTick.Instance);
        _telemetry = telemetry;
        _counters = counters;
        _recovered = recovered;
        JournalPluginId = plugins.Journal;
        SnapshotPluginId = plugins.Snapshot;

        Recover<SnapshotOffer>(offer => DurableCodec.Replay((byte[])offer.Snapshot, _book));
        Recover<byte[]>(record => DurableCodec.Replay(record, _book));
        Recover<RecoveryCompleted>(_ => Recovered());
        Idle();
    }

    /// <inheritdoc />
    public override string PersistenceId => _persistenceId;

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string persistenceId, int capacity, QueueDurability durability, (string Journal, string Snapshot) plugins,
                              QueueTelemetry telemetry, QueueCounters counters, TaskCompletionSource recovered, Action released)
    {
        var handOver = new DurableHandOver<T>(); // one for the router: every instance Akka creates for it gets this one
        return Akka.Actor.Props.Create(() => new DurableRouterActor<T>(persistenceId, capacity, durability, plugins, telemetry, counters, recovered, released, handOver));
    }

    /// <inheritdoc />
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        var failure = $"Durable queue '{_telemetry.QueueName}' could not recover from its journal: {reason.Message}";
        _recovered.TrySetException(new QueueStorageException(failure, reason));
        // What came meanwhile waits in the router's own stash (WhileRecovering): left there, it went to dead letters as the
        // router stopped, and a put made meanwhile failed as disposed, though nobody disposed the queue.
        RefuseKept(new QueueStorageException($"{failure}: the item was not stored", reason));
        base.OnRecoveryFailure(reason, message);
    }

    /// <inheritdoc />
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        Rejected(cause);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _dueTimer.Dispose();
        if (_restarting)
        {
            HandOver();
            base.PostStop();
            return;
        }

        // A journal that failed, or the actor system terminating, stops this actor: every put still waiting for its write
        // learns it was not stored, and one whose write was under way that it may have been (Akka cannot tell). The name
        // is freed first, so a queue of the name may open as soon as a disposal is answered.
        ReleaseName();
        Settle(new QueueStorageException($"Durable queue '{_telemetry.QueueName}' stopped before the item was stored"), new QueueStorageException(
            $"Durable queue '{_telemetry.QueueName}' stopped while the item's write was under way: it may have been stored, and then runs when the queue is opened again"));
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
        Stash.UnstashAll(); // the messages that came while recovering (WhileRecovering), ahead of everything else
        _book.EndLoading();
        _recovered.TrySetResult();
        TakeOver(); // before publishing: a restarted queue that was processing never reads as idle
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

    private bool HasSpace() => _book.Size + _writing.Count + _batchWrites < _capacity;

    /// <summary>Journals the put's item; the put is answered in the callback, once the event is written.</summary>
    private void Store(PendingPut<T> put)
    {
        byte[] payload;
        try
        {
            payload = JsonSerializer.SerializeToUtf8Bytes(put.Item);
        }
        catch (Exception error)
        {
            // Whatever the serialiser throws (a property getter or a converter may throw anything): escaping here, it
            // restarted the router idle, without its workers, and the put never completed.
            put.Failed(new ArgumentException($"The item cannot be stored: System.Text.Json cannot serialise {typeof(T).FullName}: {UserText.MessageOf(error)}", "item", error));
            return;
        }

        var accepted = new ItemAccepted(_book.ReserveId(), put.Priority, put.NotBefore?.UtcTicks ?? 0, payload);
        _writing.Add(accepted.Id, put);
        if (put.Trace != default)
        {
            _traces[accepted.Id] = put.Trace;
        }

        WriteLater(accepted,
            apply: () =>
            {
                _writing.Remove(accepted.Id);
                _book.Accepted(accepted, put.Item, hasItem: true);
            },
            answer: () =>
            {
                if (!put.TryAccept())
                {
                    // Withdrawn while written (its caller cancelled): out of the book at once, so the hand-out after
                    // this write does not run it (review 68: it ran), and its removal journaled next. Should the
                    // process die before that write, the item is recovered and runs: the journal says it was accepted.
                    _traces.Remove(accepted.Id);
                    ApplyThenWrite(new ItemRemoved(accepted.Id, RemovalReason.Withdrawn));
                }
            },
            refused: error =>
            {
                _writing.Remove(accepted.Id);
                _traces.Remove(accepted.Id);
                put.Failed(error);
            });
    }

    private void AfterChange()
    {
        Pump();
        _waiters.Settled(_book.Unfinished + _writing.Count);
        CheckStopped();
    }

    /// <summary>Arms the clock's timer for the earliest delayed item, if it is not armed for that time already.</summary>
    private void ScheduleDue()
    {
        if (_book.NextDueTicks is { } due && _status == QueueStatus.Processing)
        {
            // A due already passed that nobody can take now is taken when a worker frees or a getter comes (Pump), not
            // by a wake: arming for it while every worker was busy fired at once, again and again (review: a core spun
            // on due ticks). One that passed since Pump read the clock, with a taker free, is woken for at once.
            var waitsForTaker = due <= _clock.GetUtcNow().UtcTicks && !HasTaker;
            _dueTimer.Arm(waitsForTaker ? TimeSpan.MaxValue : TimeSpan.FromTicks(due));
        }
    }

    /// <summary>Whether a ready item would be taken now: a getter waits or a worker is free.</summary>
    private bool HasTaker => !_getters.IsEmpty || (_spec is { } spec && _busy < spec.Count);

    private void HandleDue()
    {
        _dueTimer.Fired(); // it may have come early: the same due sets it again
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

    private T Decode(ReadOnlyMemory<byte> payload) => JsonSerializer.Deserialize<T>(payload.Span)!;

    private void Publish() =>
        _counters.Publish(_status, _book.Size, _status == QueueStatus.Processing ? _spec?.Count ?? 0 : 0, _book.Metrics with { BackpressureEvents = _backpressure });
}
