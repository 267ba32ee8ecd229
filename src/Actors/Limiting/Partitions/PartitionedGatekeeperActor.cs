using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The one actor of a partitioned limiter: it makes every key's <see cref="Partition"/> on the key's first request and
/// drops it by a sweep once idle for the idle timeout (<see cref="PartitionTable{TPartition}"/>); it is the table's only
/// writer. Requests for a live partition, and every release, run in the partition's own turn on the caller's thread
/// (<see cref="TurnInbox"/>); the actor gets only requests for keys without a live partition, withdrawals, wakes,
/// sweeps and its stop, and touches a partition only in a turn of its own. A sweep drops a partition inside its turn,
/// so a request that reached the partition first is served by it, and one that reaches it after the drop comes back
/// here (<see cref="PartitionShared.Reroute"/>) for the key's next partition: never lost. One timer wakes it for the
/// partitions' deadlines, which their turns tell it of (<see cref="PartitionWakeAt"/>), one for the sweeps: a
/// partition has no timer of its own.
/// </summary>
internal sealed class PartitionedGatekeeperActor : ReceiveActor
{
    private readonly PartitionedSettings _settings;
    private readonly PartitionShared _shared;
    private readonly PartitionTable<Partition> _table;

    /// <summary>The partitions' wakes by the actor's time; an entry is live while its partition's <see cref="Partition.WakeQueuedAt"/> is its time.</summary>
    private readonly PriorityQueue<Partition, TimeSpan> _wakes = new();

    /// <summary>Sweeps the idle partitions every half idle timeout; <c>null</c> when the limit's clock could not make it (idle partitions are then swept as new ones are made: <see cref="PartitionTable{TPartition}.SweepMissed"/>).</summary>
    private readonly ITimer? _sweep;

    /// <summary>Wakes the actor at the earliest partition's deadline.</summary>
    private readonly WakeTimer _wakeTimer;

    /// <summary>Set as a restart begins: its <see cref="PostStop"/> is no stop, and completes nothing.</summary>
    private bool _restarting;

    public PartitionedGatekeeperActor(PartitionedSettings settings)
    {
        _settings = settings;
        _shared = settings.Shared;
        _shared.Bind(Self, Route);
        _table = settings.Table;
        var period = _table.SweepPeriod;
        _sweep = MakeSweep(settings.Time, period);
        _wakeTimer = new WakeTimer(settings.Time, Self, () => _shared.Now);

        Receive<PartitionAcquireRequest>(HandleAcquire);
        Receive<WithdrawWaiter>(HandleWithdraw);
        Receive<PartitionWakeAt>(HandleWakeAt);
        Receive<GateWake>(_ => HandleWake());
        Receive<SweepPartitions>(_ => HandleSweep());
        Receive<DisposeGatekeeper>(_ => Context.Stop(Self));
    }

    public static Props Props(PartitionedSettings settings) => Akka.Actor.Props.Create(() => new PartitionedGatekeeperActor(settings));

    /// <inheritdoc />
    protected override void PostStop()
    {
        // The application's TimeProvider's timers: one whose Dispose throws must not skip the close below.
        if (_sweep is not null)
        {
            _shared.DisposeTimer(_sweep);
        }

        _shared.DisposeTimer(_wakeTimer);

        // Each partition closes in its turn: at once if nobody holds it, else when its owner runs the close. The stop
        // completes once all have closed, so nothing is claimed from a stopped limiter.
        // The facade's stop completes however the actor stopped: a dispose's message, or its system's termination, which
        // may stop the actor while that message is on its way and lose it (neither run nor dead-lettered, see
        // PartitionedSettings.Stop).
        var live = _table.Clear();
        var open = live.Count + 1;
        var stop = _restarting ? null : _settings.Stop;
        void Closed()
        {
            if (Interlocked.Decrement(ref open) == 0)
            {
                stop?.Stopped.TrySetResult();
            }
        }

        foreach (var partition in live)
        {
            if (!partition.Submit(new CloseOp(Closed)))
            {
                Closed(); // sealed: dropped, nothing left to close
            }
        }

        Closed();
        base.PostStop();
    }

    /// <inheritdoc />
    protected override void PreRestart(Exception reason, object message)
    {
        _restarting = true;
        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A handler that throws costs the actor that message only: it logs it, keeps its table (every partition, its leases
    /// and waiters) and goes on, and a request the message was fails with the cause. Akka's default supervision would
    /// restart it, and its <see cref="PostStop"/> would close every partition: other keys' waiters failed as disposed
    /// while the limiter runs, their leases forgotten (the key's next partition granting past them). A key's own
    /// <c>GetHashCode</c> or <c>Equals</c> throwing is handled where the table is asked (<see cref="Route"/>,
    /// <see cref="HandleWithdraw"/>; the sweep and the stop call no key's code), so this is for what no handler foresaw.
    /// </remarks>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception error)
        {
            _shared.HandlerFailed(message, error);
            return true;
        }
    }

    /// <summary>A request sent for a key without a live partition (or whose partition was dropped).</summary>
    private void HandleAcquire(PartitionAcquireRequest request)
    {
        try
        {
            Route(request);
        }
        finally
        {
            _settings.Routing.Handled(); // whatever happened: left up, every later call would go by message for good
        }
    }

    /// <summary>Serves <paramref name="request"/> from its key's live partition, or from a new one; on the actor's thread.</summary>
    /// <remarks>A key whose <c>GetHashCode</c> or <c>Equals</c> throws fails its own request only (<see cref="PartitionShared.KeyFailed"/>).</remarks>
    private void Route(PartitionAcquireRequest request)
    {
        while (true)
        {
            // The table has only live partitions, and only this thread seals one (a sweep's drop): the submit is taken.
            Partition? partition;
            bool found;
            try
            {
                found = _table.TryRoute(request.Key, out partition);
            }
            catch (Exception error)
            {
                _shared.KeyFailed(request, error);
                return;
            }

            if (found && partition!.Submit(request))
            {
                return;
            }

            // Published while its first turn is taken, and this request offered in that turn: whoever finds it meanwhile
            // pushes behind the request, so nobody who called after it was sent is served before it; and its caller, once
            // granted, finds the partition (its statistics) at once. A caller that will not wait may have made the key's
            // partition since the lookup (PartitionedGatekeeper.TryAttempt): then the request goes to that one.
            partition = new Partition(request.Key, _shared);
            var taken = partition.TryTake();
            System.Diagnostics.Debug.Assert(taken, "Nobody else can see a partition before it is published.");
            bool added;
            try
            {
                added = _table.TryAdd(request.Key, partition);
            }
            catch (Exception error)
            {
                _shared.KeyFailed(request, error); // not published: nobody else saw the partition
                return;
            }

            if (added)
            {
                partition.OfferFirst(request);
                partition.GiveBack();
                return;
            }
        }
    }

    private void HandleWithdraw(WithdrawWaiter message)
    {
        // A waiter keeps its partition live; a dropped partition's requests had all been answered.
        if (message.Waiter is not PartitionAcquireRequest request)
        {
            return;
        }

        Partition? partition;
        try
        {
            if (!_table.TryRoute(request.Key, out partition))
            {
                return;
            }
        }
        catch (Exception error)
        {
            // The key cannot be looked up any more: the partition it queued in, if it did (a sealed one refuses).
            _shared.KeyLookupFailed("a cancelled caller's withdrawal went to the partition it queued in", error);
            if ((partition = request.Releaser as Partition) is null)
            {
                return;
            }
        }

        partition.Submit(new PartitionWithdraw(request));
    }

    private void HandleWakeAt(PartitionWakeAt message)
    {
        var partition = message.Partition;
        if (message.At >= partition.WakeQueuedAt)
        {
            return;
        }

        partition.WakeQueuedAt = message.At;
        _wakes.Enqueue(partition, message.At);
        ArmWake();
    }

    private void HandleWake()
    {
        _wakeTimer.Fired();
        var now = _shared.Now;
        while (_wakes.TryPeek(out var partition, out var at) && at <= now)
        {
            _wakes.Dequeue();
            if (partition.WakeQueuedAt == at)
            {
                // Its turn tells the next wake, if any, once the due waiters are expired.
                partition.WakeQueuedAt = TimeSpan.MaxValue;
                partition.Submit(new PartitionWake());
            }
        }

        ArmWake();
    }

    private void HandleSweep()
    {
        // Each partition is judged, and dropped, in its own turn (PartitionTable.Sweep, Partition.SweepIsIdle).
        _table.Sweep(_shared.Now);
        if (_wakes.Count > 2 * (_table.Count + 1))
        {
            // Stale wakes (of dropped partitions, or moved) outnumber the live ones: keep only the live.
            var live = _wakes.UnorderedItems.Where(entry => entry.Element.WakeQueuedAt == entry.Priority).ToList();
            _wakes.Clear();
            _wakes.EnqueueRange(live);
        }
    }

    /// <summary>
    /// Sets the timer for the earliest live wake if it moved; the clock is read only then. Should the limit's clock (the
    /// application's) throw, every partition with a wake queued is told so in its turn (<see cref="PartitionWakeUnset"/>),
    /// where the waits that needed the wake fail at once (<see cref="UnsetWake"/>); a later wake sets the timer anew.
    /// </summary>
    private void ArmWake()
    {
        while (_wakes.TryPeek(out var partition, out var at) && partition.WakeQueuedAt != at)
        {
            _wakes.Dequeue(); // stale
        }

        try
        {
            _wakeTimer.Arm(_wakes.TryPeek(out _, out var earliest) ? earliest : TimeSpan.MaxValue);
        }
        catch (Exception error)
        {
            _wakeTimer.Fired(); // set for nothing: the next wake sets it again
            _shared.ClockFailed(error, "as it set its wake timer; the waits that needed it fail");
            while (_wakes.TryDequeue(out var partition, out var at))
            {
                if (partition.WakeQueuedAt == at)
                {
                    partition.WakeQueuedAt = TimeSpan.MaxValue;
                    partition.Submit(new PartitionWakeUnset(error, at)); // a dropped (sealed) partition has nobody waiting
                }
            }
        }
    }

    /// <summary>The sweep's timer on the limit's clock; <c>null</c> (logged) when the clock throws: the limiter then serves as ever, and sweeps only as new partitions are made.</summary>
    private ITimer? MakeSweep(TimeProvider time, TimeSpan period)
    {
        try
        {
            return time.CreateTimer(static self => ((IActorRef)self!).Tell(SweepPartitions.Instance, ActorRefs.NoSender), Self, period, period);
        }
        catch (Exception error)
        {
            _shared.ClockFailed(error, "as it made its sweep timer; idle partitions are swept only as new ones are made");
            return null;
        }
    }
}

/// <summary>What a <see cref="PartitionedGatekeeperActor"/> is made with.</summary>
/// <param name="Gatekeeper">Every partition's limits, name and clock.</param>
/// <param name="IdleTimeout">How long a partition stays idle before it is dropped.</param>
/// <param name="Table">The live partitions, written by the actor only and read by the facade.</param>
/// <param name="Routing">The requests on their way to the actor.</param>
/// <param name="Shared">What every partition shares, made with the facade (a caller may make a partition before the actor starts).</param>
/// <param name="Stop">
/// The facade's one stop message (<see cref="OwnedActor{TStop}"/> sends this very one): the actor completes it once it has
/// stopped and closed every partition, whatever stopped it. A dispose racing the system's termination may lose its
/// message (Akka drops a message enqueued into a mailbox its stopping actor has just drained), and a completion that
/// came only with the message it carried never came.
/// </param>
internal sealed record PartitionedSettings(GatekeeperSettings Gatekeeper, TimeSpan IdleTimeout, PartitionTable<Partition> Table, OnTheWay Routing, PartitionShared Shared, DisposeGatekeeper Stop)
{
    public TimeProvider Time => Gatekeeper.Time;
}

/// <summary>The actor's timer: drop the partitions idle for the whole timeout.</summary>
internal sealed class SweepPartitions
{
    public static readonly SweepPartitions Instance = new();
}
