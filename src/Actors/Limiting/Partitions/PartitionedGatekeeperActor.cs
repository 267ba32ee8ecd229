using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The one actor of a partitioned limiter: every key's <see cref="Partition"/> lives inside it, made on the key's
/// first request and dropped by a sweep once idle for the idle timeout (<see cref="PartitionTable{TPartition}"/>).
/// Requests, releases, withdrawals and sweeps are all its messages, handled one at a time, so a request racing with
/// its partition's drop is served either by the partition before the drop or by a new one after it: never lost.
/// One timer wakes it for the partitions' deadlines, one for the sweeps: a partition has no timer of its own. Every
/// message for a partition starts by reclaiming the partition's loan and ends by lending again
/// (<see cref="PartitionLoan"/>), so a claim is always counted before the partition is judged or changed.
/// </summary>
internal sealed class PartitionedGatekeeperActor : ReceiveActor
{
    private readonly PartitionedSettings _settings;
    private readonly PartitionShared _shared;
    private readonly PartitionTable<Partition> _table;

    /// <summary>Makes a partition for a key (cached: no closure per request).</summary>
    private readonly Func<object, Partition> _make;

    /// <summary>The partitions' wakes by the actor's time; an entry is live while its partition's <see cref="Partition.WakeQueuedAt"/> is its time.</summary>
    private readonly PriorityQueue<Partition, TimeSpan> _wakes = new();

    /// <summary>Sweeps the idle partitions every half idle timeout.</summary>
    private readonly ITimer _sweep;

    /// <summary>Wakes the actor at the earliest partition's deadline; made on the first deadline.</summary>
    private ITimer? _wakeTimer;

    /// <summary>The actor's time <see cref="_wakeTimer"/> is set for; <see cref="TimeSpan.MaxValue"/> when it is off.</summary>
    private TimeSpan _wakeArmedAt = TimeSpan.MaxValue;

    /// <summary>Set once a dispose request arrived; completed in <see cref="PostStop"/>.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public PartitionedGatekeeperActor(PartitionedSettings settings)
    {
        _settings = settings;
        _shared = new PartitionShared(Self, settings.Gatekeeper, Context.GetLogger());
        _make = key => new Partition(key, _shared);
        _table = settings.Table;
        var period = _table.SweepPeriod;
        _sweep = settings.Time.CreateTimer(static self => ((IActorRef)self!).Tell(SweepPartitions.Instance, ActorRefs.NoSender), Self, period, period);

        Receive<PartitionAcquireRequest>(HandleAcquire);
        Receive<PartitionRelease>(HandleRelease);
        Receive<PartitionSettle>(HandleSettle);
        Receive<WithdrawWaiter>(HandleWithdraw);
        Receive<GateWake>(_ => HandleWake());
        Receive<SweepPartitions>(_ => HandleSweep());
        Receive<DisposeGatekeeper>(message =>
        {
            _disposeRequest = message;
            Context.Stop(Self);
        });
    }

    public static Props Props(PartitionedSettings settings) => Akka.Actor.Props.Create(() => new PartitionedGatekeeperActor(settings));

    /// <inheritdoc />
    protected override void PostStop()
    {
        _sweep.Dispose();
        _wakeTimer?.Dispose();
        // Closed before the dispose completes: nothing is claimed from a stopped limiter.
        foreach (var partition in _table.Live)
        {
            partition.Close();
        }

        _table.Clear();
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    private void HandleAcquire(PartitionAcquireRequest request)
    {
        request.AnnouncedOn?.Leave();
        var partition = _table.Route(request.Key, _make);
        partition.Reclaim();
        partition.Offer(request);
        AfterChange(partition);
    }

    private void HandleRelease(PartitionRelease message)
    {
        // A partition holding permits is never dropped, so the one a lease names is live.
        PartitionTable<Partition>.Touch(message.Partition);
        message.Partition.Reclaim();
        message.Partition.Release(message.Permits);
        AfterChange(message.Partition);
    }

    private void HandleSettle(PartitionSettle message)
    {
        // A settle after its lease's release may find its partition dropped once at rest: like a settle to a stopped gatekeeper, it then changes nothing.
        PartitionTable<Partition>.Touch(message.Partition);
        message.Partition.Reclaim();
        message.Partition.Settle(message.Settle);
        AfterChange(message.Partition);
    }

    private void HandleWithdraw(WithdrawWaiter message)
    {
        // A waiter keeps its partition live; a dropped partition's requests had all been answered.
        if (message.Waiter is PartitionAcquireRequest request && _table.TryRoute(request.Key, out var partition))
        {
            partition.Reclaim();
            partition.Withdraw(request);
            AfterChange(partition);
        }
    }

    private void HandleWake()
    {
        _wakeArmedAt = TimeSpan.MaxValue;
        var now = _shared.Now;
        while (_wakes.TryPeek(out var partition, out var at) && at <= now)
        {
            _wakes.Dequeue();
            if (partition.WakeQueuedAt == at)
            {
                partition.WakeQueuedAt = TimeSpan.MaxValue;
                partition.Reclaim();
                partition.Wake();
                Schedule(partition);
                partition.Lend();
            }
        }

        ArmWake();
    }

    private void HandleSweep()
    {
        // The sweep reclaimed every loan before judging; a dropped partition's loan closes, every live one lends again.
        foreach (var dropped in _table.Sweep(_shared.Now))
        {
            dropped.Dropped();
        }

        foreach (var partition in _table.Live)
        {
            partition.Lend();
        }

        if (_wakes.Count > 2 * (_table.Count + 1))
        {
            // Stale wakes (of dropped partitions, or moved) outnumber the live ones: keep only the live.
            var live = _wakes.UnorderedItems.Where(entry => entry.Element.WakeQueuedAt == entry.Priority).ToList();
            _wakes.Clear();
            _wakes.EnqueueRange(live);
        }
    }

    /// <summary>After a message changed <paramref name="partition"/>: lend what it has free, queue its wake if it moved, and arm the timer.</summary>
    private void AfterChange(Partition partition)
    {
        partition.Lend();
        if (partition.HasGate || partition.WakeQueuedAt != TimeSpan.MaxValue)
        {
            Schedule(partition);
            ArmWake();
        }
    }

    private void Schedule(Partition partition)
    {
        var next = partition.NextWakeAt;
        if (next == partition.WakeQueuedAt)
        {
            return;
        }

        partition.WakeQueuedAt = next;
        if (next != TimeSpan.MaxValue)
        {
            _wakes.Enqueue(partition, next);
        }
    }

    /// <summary>Sets the timer for the earliest live wake if it moved; the clock is read only then.</summary>
    private void ArmWake()
    {
        while (_wakes.TryPeek(out var partition, out var at) && partition.WakeQueuedAt != at)
        {
            _wakes.Dequeue(); // stale
        }

        var next = _wakes.TryPeek(out _, out var earliest) ? earliest : TimeSpan.MaxValue;
        if (next == _wakeArmedAt)
        {
            return;
        }

        _wakeArmedAt = next;
        if (next == TimeSpan.MaxValue)
        {
            _wakeTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var due = next - _shared.Now;
        if (due <= TimeSpan.Zero)
        {
            // Past already (the clock moved while this message ran): a timer for a past time may wait for the next tick.
            Self.Tell(GateWake.Instance, ActorRefs.NoSender);
            return;
        }

        _wakeTimer ??= _settings.Time.CreateTimer(static self => ((IActorRef)self!).Tell(GateWake.Instance, ActorRefs.NoSender), Self,
                                                   Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _wakeTimer.Change(due, Timeout.InfiniteTimeSpan);
    }
}

/// <summary>What a <see cref="PartitionedGatekeeperActor"/> is made with.</summary>
/// <param name="Gatekeeper">Every partition's limits, name and clock.</param>
/// <param name="IdleTimeout">How long a partition stays idle before it is dropped.</param>
/// <param name="Table">The live partitions, written by the actor only and read by the facade.</param>
internal sealed record PartitionedSettings(GatekeeperSettings Gatekeeper, TimeSpan IdleTimeout, PartitionTable<Partition> Table)
{
    public TimeProvider Time => Gatekeeper.Time;
}

/// <summary>A facade's request for permits of one partition; the actor routes it by <see cref="Key"/>.</summary>
internal class PartitionAcquireRequest(object key, string source, IActorRef server, bool signalQueued, int permits, int priority, TimeSpan? timeout)
    : AcquireRequest(source, server, signalQueued, permits, priority, timeout)
{
    /// <summary>The partition's key.</summary>
    public object Key { get; } = key;

    /// <summary>The loan the facade announced this request on before it sent it (<see cref="PartitionLoan.Announce"/>), if the partition was live.</summary>
    public PartitionLoan? AnnouncedOn { get; set; }
}

/// <summary>The actor's timer: drop the partitions idle for the whole timeout.</summary>
internal sealed class SweepPartitions
{
    public static readonly SweepPartitions Instance = new();
}
