using System.Collections.Concurrent;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The parent of a partitioned limiter: one child <see cref="GatekeeperActor"/> per key, made on the first request for
/// the key and stopped after it stayed idle (nothing held, nobody waiting) for the idle timeout. Every request and
/// withdrawal reaches a child through here, counted, which makes the stop safe (<see cref="PartitionTable{TChild}"/>).
/// The children's counts go to <see cref="PartitionDirectory"/> for synchronous reads.
/// </summary>
internal sealed class PartitionedGatekeeperActor : ReceiveActor
{
    private readonly PartitionedSettings _settings;
    private readonly PartitionTable<IActorRef> _table;

    /// <summary>Sweeps the idle partitions every half idle timeout.</summary>
    private readonly ITimer _sweep;

    /// <summary>The clock's stamp at start: table time counts from here.</summary>
    private readonly long _startedAt;

    /// <summary>Names the children.</summary>
    private long _made;

    /// <summary>Set once a dispose request arrived; completed in <see cref="PostStop"/>.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public PartitionedGatekeeperActor(PartitionedSettings settings)
    {
        _settings = settings;
        _table = new PartitionTable<IActorRef>(settings.IdleTimeout);
        _startedAt = settings.Time.GetTimestamp();
        var period = settings.IdleTimeout / 2 > TimeSpan.FromMilliseconds(1) ? settings.IdleTimeout / 2 : TimeSpan.FromMilliseconds(1);
        _sweep = settings.Time.CreateTimer(static self => ((IActorRef)self!).Tell(SweepPartitions.Instance, ActorRefs.NoSender), Self, period, period);

        Receive<PartitionAcquireRequest>(request => _table.Route(request.Key, MakePartition).Tell(request, Self));
        Receive<WithdrawWaiter>(HandleWithdraw);
        Receive<PartitionIdle>(message => _table.Idle(message.Key, message.Gatekeeper, message.Handled, Now));
        Receive<SweepPartitions>(_ => HandleSweep());
        Receive<DisposeGatekeeper>(message =>
        {
            _disposeRequest = message;
            Context.Stop(Self);
        });
    }

    private TimeSpan Now => _settings.Time.GetElapsedTime(_startedAt);

    public static Props Props(PartitionedSettings settings) => Akka.Actor.Props.Create(() => new PartitionedGatekeeperActor(settings));

    /// <inheritdoc />
    protected override void PostStop()
    {
        _sweep.Dispose();
        _settings.Directory.Clear();
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    private void HandleWithdraw(WithdrawWaiter message)
    {
        // A waiter of a stopped partition had been answered before its partition went idle: nothing to withdraw.
        if (message.Waiter is PartitionAcquireRequest request && _table.TryRoute(request.Key, out var child))
        {
            child.Tell(message, Self);
        }
    }

    private void HandleSweep()
    {
        foreach (var (key, child) in _table.Sweep(Now))
        {
            Context.Stop(child);
            _settings.Directory.Remove(key);
        }
    }

    private IActorRef MakePartition(object key)
    {
        var counts = new LimiterCounts();
        var gatekeeper = _settings.Gatekeeper with { Counts = counts, Partition = new PartitionMembership(Self, key) };
        var child = Context.ActorOf(GatekeeperActor.Props(gatekeeper).WithDispatcher(_settings.Dispatcher), $"partition-{++_made}");
        _settings.Directory.Add(key, counts);
        return child;
    }
}

/// <summary>What a <see cref="PartitionedGatekeeperActor"/> is made with.</summary>
/// <param name="Gatekeeper">The settings every partition's gatekeeper gets (its counts and membership are its own).</param>
/// <param name="IdleTimeout">How long a partition stays idle before it is stopped.</param>
/// <param name="Dispatcher">The children's dispatcher.</param>
/// <param name="Directory">Where the live partitions' counts go.</param>
internal sealed record PartitionedSettings(GatekeeperSettings Gatekeeper, TimeSpan IdleTimeout, string Dispatcher, PartitionDirectory Directory)
{
    public TimeProvider Time => Gatekeeper.Time;
}

/// <summary>
/// The live partitions' counts for synchronous reads (statistics, the adapter). Written by the parent actor only: an
/// entry is added before its partition's first request and removed once the partition is stopped.
/// </summary>
internal sealed class PartitionDirectory
{
    private readonly ConcurrentDictionary<object, LimiterCounts> _counts = new();

    private long _made;

    public int Count => _counts.Count;

    /// <summary>How many partitions were ever made (a stopped key's next request makes another).</summary>
    public long Made => Volatile.Read(ref _made);

    public IEnumerable<KeyValuePair<object, LimiterCounts>> Entries => _counts;

    public bool TryGet(object key, out LimiterCounts counts) => _counts.TryGetValue(key, out counts!);

    public void Add(object key, LimiterCounts counts)
    {
        _counts[key] = counts;
        Interlocked.Increment(ref _made);
    }

    public void Remove(object key) => _counts.TryRemove(key, out _);

    public void Clear() => _counts.Clear();
}

/// <summary>A facade's request for permits of one partition; the parent routes it by <see cref="Key"/>.</summary>
internal class PartitionAcquireRequest(object key, string source, IActorRef parent, bool signalQueued, int permits, int priority, TimeSpan? timeout)
    : AcquireRequest(source, parent, signalQueued, permits, priority, timeout)
{
    /// <summary>The partition's key.</summary>
    public object Key { get; } = key;
}

/// <summary>The parent's timer: stop the partitions idle for the whole timeout.</summary>
internal sealed class SweepPartitions
{
    public static readonly SweepPartitions Instance = new();
}
