using System.Diagnostics;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The machinery both partitioned facades stand on (<see cref="PartitionedConcurrencyLimiter{TKey}"/>,
/// <see cref="PartitionedModelApiLimiter{TKey}"/>): the one <see cref="PartitionedGatekeeperActor"/>, its table of live
/// partitions for synchronous reads, wait spans and disposal. A facade checks its arguments, makes the request and
/// hands it here; what differs between the kinds is only the <see cref="GatekeeperSettings"/> it was made from.
/// </summary>
internal sealed class PartitionedGatekeeper
{
    /// <summary>The live partitions, written by the actor (and, for a key with none, by a caller that will not wait).</summary>
    private readonly PartitionTable<Partition> _table;

    /// <summary>The requests on their way to the actor: while any is, every request follows them there.</summary>
    private readonly OnTheWay _routing = new();

    /// <summary>What every partition shares; a caller that will not wait makes a key's partition with it.</summary>
    private readonly PartitionShared _shared;

    /// <summary>The actor, stopped by Dispose or, for a limiter dropped undisposed, by a finaliser.</summary>
    private readonly OwnedActor<DisposeGatekeeper> _actor;

    private readonly WaitSpans _spans;

    /// <summary>Counts the grants claimed from partitions' loans, which the actor never sees.</summary>
    private readonly GatekeeperTelemetry _claims;

    /// <summary>The last lease number given to a claimed lease; claimed leases count down from -1, apart from the partitions' own.</summary>
    private long _lastClaimedId;

    /// <param name="settings">Every partition's limits, name and clock.</param>
    /// <param name="idleTimeout">How long a partition stays idle before it is dropped.</param>
    /// <param name="actorName">The actor's name's stem.</param>
    /// <param name="tracer">Where wait spans go; the library's when <c>null</c>.</param>
    /// <param name="runtime">The actor system and its settings.</param>
    /// <param name="keys">The comparer of the keys (<see cref="PartitionTable{TPartition}.KeysOf{TKey}"/>); the object keys' when <c>null</c>.</param>
    public PartitionedGatekeeper(GatekeeperSettings settings, TimeSpan idleTimeout, string actorName, ActivitySource? tracer, ActorQueueExtension runtime,
                                 IEqualityComparer<object>? keys = null)
    {
        Settings = settings;
        _table = new PartitionTable<Partition>(idleTimeout, dropping: _routing, keys);
        _spans = new WaitSpans(tracer ?? ActorQueueTelemetry.Source, settings.Name);
        _claims = new GatekeeperTelemetry(settings.MetricName, new ListenerFailureLog(runtime.System.Log, settings.MetricName));
        _shared = new PartitionShared(settings, runtime.System.Log, _routing);
        var stop = new DisposeGatekeeper(); // completed by the actor's stop, whatever stopped it (PartitionedSettings.Stop)
        var props = PartitionedGatekeeperActor.Props(new PartitionedSettings(settings, idleTimeout, _table, _routing, _shared, stop)).WithDispatcher(runtime.Settings.CoordinatorDispatcher);
        _actor = new OwnedActor<DisposeGatekeeper>(runtime.System.ActorOf(props, runtime.UniqueActorName(actorName, settings.Name)), () => stop);
        _shared.Bind(_actor.Actor, route: null);
    }

    /// <summary>Every partition's limits.</summary>
    public GatekeeperSettings Settings { get; }

    /// <summary>The actor every request goes to.</summary>
    public IActorRef Actor => _actor.Actor;

    /// <summary>Whether someone listens for wait spans (requests then signal when they queue).</summary>
    public bool IsTraced => _spans.IsTraced;

    /// <summary>How many partitions are live now.</summary>
    public int Count => _table.Count;

    /// <summary>How many partitions were ever made.</summary>
    public long Made => _table.Made;

    /// <summary>Whether a request is on its way to the actor (every attempt is refused meanwhile, so nobody passes it).</summary>
    internal bool IsRouting => _routing.Any;

    /// <summary>Throws <see cref="ObjectDisposedException"/> for <paramref name="facade"/> once disposed.</summary>
    public void ThrowIfDisposed(object facade) => _actor.ThrowIfDisposed(facade);

    /// <summary>
    /// <paramref name="key"/> as a request carries it: a value-type key with a live partition as that partition's own
    /// boxed key (equal to it), so a call that waits in a live partition boxes nothing; otherwise the key itself.
    /// </summary>
    /// <typeparam name="TKey">The key's type.</typeparam>
    public static object Boxed<TKey>(TKey key, Partition? live)
        where TKey : notnull => typeof(TKey).IsValueType && live is not null ? live.Key : key;

    /// <summary>
    /// Claims <paramref name="permits"/> from the loan of <paramref name="key"/>'s live partition, without a message; fails
    /// (claiming nothing) when the partition is not live, someone waits in it, its loan does not cover them, or a request
    /// is on its way to the actor (it would be passed).
    /// </summary>
    /// <param name="key">The partition's key (a value-type key is looked up unboxed: <see cref="PartitionTable{TPartition}.TryGet{TKey}"/>).</param>
    /// <param name="permits">How many permits.</param>
    /// <param name="source">Who asks.</param>
    /// <param name="live">The live partition found, for the request that follows a failed claim; <c>null</c> when none is live.</param>
    /// <returns>The lease, or <c>null</c> when nothing was claimed.</returns>
    /// <typeparam name="TKey">The key's type.</typeparam>
    public ConcurrencyLease? TryClaim<TKey>(TKey key, int permits, string source, out Partition? live)
        where TKey : notnull
    {
        if (_routing.Any)
        {
            live = null;
            return null;
        }

        if (!_table.TryGet(key, out var partition) || !partition.Loan.TryClaim(permits))
        {
            live = partition;
            return null;
        }

        live = partition;
        _claims.Claimed(permits); // running too, at once: the partition's reclaim counts it as metered
        return new ConcurrencyLease(partition, Interlocked.Decrement(ref _lastClaimedId), source, permits);
    }

    /// <summary>
    /// A caller that will not wait, whose claim from the loan failed (or whose partition has rates, which lend nothing):
    /// grants <paramref name="request"/> at once, on this thread, or takes nothing. With no live partition for its key
    /// (never made, or dropped for idleness) it makes one, as RateLimiting's partitioned limiter makes a fresh limiter:
    /// published in the table with its first turn taken, the request run in that turn (nothing of the key is held or
    /// awaited, so it fits), so whoever finds it meanwhile queues behind; the actor, should it route a request of the key
    /// meanwhile, finds it there (<see cref="PartitionTable{TPartition}.TryAdd"/> lets one maker win). With a live one
    /// and <paramref name="inTurn"/> (a partition with rates), it takes the partition's turn if it is free and grants
    /// only if nobody waits and the slots and rates allow the call now (<see cref="Partition.TryAttempt"/>). Never while a
    /// request is on its way to the actor (a request sent earlier, or one a dropping sweep reroutes, is not passed), never
    /// waiting for a turn: a busy one refuses.
    /// </summary>
    /// <param name="request">The attempt, checked; granted (its result set) when this returns <c>true</c>.</param>
    /// <param name="live">The key's partition as a claim found it, if any; on return, the partition that served or refused it, if any.</param>
    /// <param name="inTurn">Whether a live partition is asked in its turn (else only a key with none is served).</param>
    /// <param name="judged">Refused in the partition's turn by its slots or rates, nobody waiting (the request's <c>RetryAfter</c> then says when the rates would allow it, if they refused it).</param>
    /// <returns>Whether it was granted.</returns>
    public bool TryAttempt(PartitionAcquireRequest request, ref Partition? live, bool inTurn, out bool judged)
    {
        judged = false;
        if (live is null && !_table.TryGet(request.Key, out live))
        {
            // Read after the lookup: a sweep counts a drop as on its way before the key's partition leaves the table.
            return !_routing.Any && TryMake(request, out live);
        }

        return inTurn && !_routing.Any && live.TryAttempt(request, out judged);
    }

    /// <summary>Makes <paramref name="request"/>'s key's partition and grants it in the partition's first turn; <c>false</c> when someone made one first (in <paramref name="live"/>) or the limiter stops.</summary>
    /// <remarks>Never inlined, so it keeps a stack frame of its own: FreshStartReviewTests holds a caller inside it (a key whose hash blocks when called from this frame) to make its races deterministic; inlined by the optimising JIT, the frame was gone and those tests timed out in Release.</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private bool TryMake(PartitionAcquireRequest request, out Partition? live)
    {
        AskSweepIfMissed();
        var partition = new Partition(request.Key, _shared);
        var taken = partition.TryTake();
        Debug.Assert(taken, "Nobody else can see a partition before it is published.");
        if (!_table.TryAdd(request.Key, partition))
        {
            live = PartitionOf(request.Key); // made meanwhile, by the actor or another caller: its first turn is theirs
            return false;
        }

        // The stop marks the limiter disposed before its actor takes the live partitions to close them: with a full fence
        // on each side, either the stop's list has this one (and its close waits for this turn) or this reads it disposed.
        Interlocked.MemoryBarrier();
        if (_actor.IsDisposed)
        {
            live = null;
            try
            {
                _table.Remove(request.Key, partition);
            }
            finally
            {
                // Closed, and its first turn given back, even if the key throws as it is removed (its caller gets that
                // exception): the stop may have taken it to close already, and its close waits in this turn.
                partition.CloseFirst();
            }

            return false;
        }

        live = partition;
        return partition.AttemptFirst(request);
    }

    /// <summary>A caller that would not wait was refused (<see cref="GatekeeperTelemetry.RefusedAttempt"/>).</summary>
    public void RefusedAttempt() => _claims.RefusedAttempt();

    /// <summary>Whether <paramref name="key"/>'s live partition has <paramref name="permits"/> lent now (a probe; it claims nothing).</summary>
    /// <param name="key">The partition's key.</param>
    /// <param name="permits">How many permits.</param>
    /// <param name="live">The live partition found; <c>null</c> when none is live.</param>
    public bool Covers(object key, int permits, out Partition? live) => (live = PartitionOf(key)) is { } partition && partition.Loan.Covers(permits);

    /// <summary>The live partition of <paramref name="key"/>; <c>null</c> when none is live.</summary>
    internal Partition? PartitionOf(object key) => _table.TryGet(key, out var partition) ? partition : null;

    /// <summary>
    /// Runs <paramref name="request"/> in its live partition's turn (or sends it to the actor, which makes the partition)
    /// and awaits its grant, tracing a real wait under the partition's key.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Withdraws it while it waits.</param>
    /// <param name="live">Its key's partition as a claim just found it, if live; looked up when <c>null</c>.</param>
    public ValueTask<ConcurrencyLease> Send(PartitionAcquireRequest request, CancellationToken cancellationToken, Partition? live = null)
    {
        // The key's text for the span before the request is on its way: a key whose ToString throws is named by a
        // placeholder (UserText), so its caller still gets the request's answer, never the key's exception with the
        // request granted to nobody.
        var keyText = request.QueuedSignal is null ? null : UserText.Of(request.Key, "key");
        Dispatch(request, live);

        var grant = request.WaitAsync(cancellationToken);
        return request.QueuedSignal is { } queued
            ? _spans.TraceWaitAsync(request, queued.Task, grant, Settings.MaxRunning, Settings.MaxQueued, keyText)
            : grant;
    }

    /// <summary>
    /// Runs <paramref name="request"/> in its live partition's turn, or sends it to the actor, which makes the partition;
    /// whoever awaits it must trace and withdraw it as <see cref="Send"/> does.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="live">Its key's partition as a claim just found it, if live (a partition dropped since sends it on to the actor); looked up when <c>null</c>.</param>
    public void Dispatch(PartitionAcquireRequest request, Partition? live = null)
    {
        // Run now, or left to the turn's owner with the loan shut: FIFO from the moment the call returns. Behind a request
        // on its way to the actor, or for a partition not live (a sealed one was dropped), it goes to the actor too.
        if (!_routing.Any && (live is { } partition || _table.TryGet(request.Key, out partition)) && partition.Submit(request))
        {
            return;
        }

        AskSweepIfMissed(); // the request may make a partition: a sweep asked now is handled before it
        _routing.Sending();
        _actor.Actor.Tell(request, ActorRefs.NoSender);
    }

    /// <summary>
    /// Before a partition may be made: asks the actor for a sweep if its sweeps stopped coming (<see cref="PartitionTable{TPartition}.SweepMissed"/>:
    /// the limit's clock makes no timer, or one that never fires). Never throws: a clock that cannot be read is logged
    /// and the next new partition asks again.
    /// </summary>
    private void AskSweepIfMissed()
    {
        try
        {
            if (_table.SweepMissed(_shared.Now))
            {
                _actor.Actor.Tell(SweepPartitions.Instance, ActorRefs.NoSender);
            }
        }
        catch (Exception error)
        {
            _shared.ClockFailed(error, "as a caller checked that idle partitions are still swept; the next new partition checks again");
        }
    }

    /// <summary>The counts of <paramref name="key"/>'s partition; <c>null</c> when it is not live.</summary>
    public PartitionStatistics? StatisticsOf(object key) => _table.TryGet(key, out var partition) ? StatisticsOf(partition) : null;

    /// <summary>The counts of every live partition, read in one pass; one entry per partition, whatever its key does (<see cref="PartitionStatisticsView{TKey}"/>).</summary>
    /// <remarks>
    /// The table is enumerated without calling a key's code; a key whose <c>GetHashCode</c> or <c>Equals</c> throws on
    /// this thread is kept aside in the view, so it neither throws to every reader nor hides its partition.
    /// </remarks>
    public IReadOnlyDictionary<TKey, PartitionStatistics> Statistics<TKey>()
        where TKey : notnull
    {
        var statistics = new PartitionStatisticsView<TKey>();
        foreach (var (key, partition) in _table.Entries)
        {
            statistics.Add((TKey)key, StatisticsOf(partition));
        }

        return statistics;
    }

    /// <summary>Stops the actor without waiting: waiters get <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _actor.Stop();

    /// <summary>As <see cref="Dispose"/>, and completes once the actor has stopped.</summary>
    public ValueTask DisposeAsync() => _actor.Stop() is { } dispose ? new ValueTask(dispose.Stopped.Task) : default;

    private PartitionStatistics StatisticsOf(Partition partition) => new(partition.Running, partition.Waiting, Settings.MaxRunning, Settings.MaxQueued);
}
