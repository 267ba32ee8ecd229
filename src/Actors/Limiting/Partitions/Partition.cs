using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// One key's limit inside a <see cref="PartitionedGatekeeperActor"/>, touched only on that actor's thread except for
/// its published counts. Without rates it starts lean: a count of held permits and a FIFO of waiters that ask the
/// common thing (<see cref="FifoWaiters"/>: priority 0, no wait timeout), both fields of the partition itself. A request
/// that fits while nobody waits is granted at once (nobody is passed); one that must wait queues at the back, and a
/// release grants from the front while the front fits. The first request that needs more (a priority, a wait timeout, a
/// full queue, more permits than the limit) gets it a <see cref="PermitGate"/>, which takes over the waiters in order
/// and decides everything until a sweep finds its queue empty and drops it again. A partition with rates keeps its
/// gate for life, since its buckets and windows are state.
/// Everything that touches it runs in its turn (<see cref="TurnInbox"/>): a caller that finds the partition free
/// runs its request or release itself, one that finds it busy leaves it to the thread in the turn, so a contended
/// partition needs no message; the actor takes a turn only to make, sweep, wake and close partitions. Between turns a
/// concurrency partition lends its free permits while nobody waits (<see cref="Loan"/>), so an uncontended caller takes
/// and gives back permits with one compare-and-swap.
/// Its parts: the fields, the counts and the requests' entry points here; the lean count and FIFO (<c>Partition.Lean.cs</c>),
/// the gate (<c>Partition.Gate.cs</c>), the loan (<c>Partition.Lending.cs</c>), the turns (<c>Partition.Turns.cs</c>),
/// attempts that will not wait (<c>Partition.Attempts.cs</c>), the sweep (<c>Partition.Sweep.cs</c>) and what it publishes
/// (<c>Partition.Publishing.cs</c>).
/// </summary>
[DebuggerDisplay("{Key}: running {Running}, waiting {Waiting}, gate {_gate != null}")]
internal sealed partial class Partition : TurnInbox, IPermitGateListener, ILeaseReleaser, ITokenSettler, ISweptPartition
{
    /// <summary>What every partition of the limiter shares: settings, telemetry, the actor.</summary>
    private readonly PartitionShared _shared;

    /// <summary>Live, or why not: a request that reaches a dropped partition goes to the actor, one that reaches a stopped limiter fails.</summary>
    private PartitionState _state;

    /// <summary>The earliest wake the actor was told of and has not yet run; <see cref="TimeSpan.MaxValue"/> when none.</summary>
    private TimeSpan _wakeToldAt = TimeSpan.MaxValue;

    /// <summary>The queue and rules once someone had to wait (or for life with rates); <c>null</c> otherwise.</summary>
    private PermitGate? _gate;

    /// <summary>The gate's pool of permits; <c>null</c> with the gate.</summary>
    private PermitPool? _pool;

    /// <summary>The gate's rates; <c>null</c> for a concurrency limit.</summary>
    private IRestingPolicy[]? _rates;

    /// <summary>The permits held while there is no gate (the gate's pool counts them otherwise).</summary>
    private long _held;

    /// <summary>The last lease number given out without a gate.</summary>
    private long _lastLeaseId;

    /// <summary>The waiters while there is no gate (the gate's queue holds them otherwise): all of priority 0, without a deadline.</summary>
    private FifoWaiters _fifo;

    /// <summary>The running count last published, for synchronous reads (exact at the end of every message, before the loan).</summary>
    private volatile int _running;

    /// <summary>The waiting count last published, for synchronous reads.</summary>
    private volatile int _waiting;

    /// <summary>
    /// What the waiters asked for, last published with <see cref="_waiting"/> (<see cref="Queued"/>); written with
    /// <see cref="Volatile"/>, as a long cannot be volatile.
    /// </summary>
    private long _queued;

    /// <summary>The actor's time the gate was made at: its gate time plus this is the actor's time.</summary>
    private TimeSpan _gateOrigin;

    /// <summary>Leases the limiter's RateLimiting views gave for this key while this partition lives (any thread).</summary>
    private LeaseTotals _leases;

    /// <summary>A partition with rates: the tokens a call could take as of its last turn (<see cref="AvailableTokens"/>); written with <see cref="Volatile"/>.</summary>
    private long _freeTokens;

    /// <summary>The actor's time, in ticks, from which <see cref="_freeTokens"/> may be out of date: a rate's next gain by itself; <see cref="long.MaxValue"/> for none.</summary>
    private long _freeTokensUntil = long.MaxValue;

    public Partition(object key, PartitionShared shared)
        : base(answersPushes: true)
    {
        Key = key;
        _shared = shared;
        if (shared.Settings.Rates is not null)
        {
            EnsureGate();
            PublishTokens(); // nobody else sees it yet: its fresh rates, before its first turn
        }
    }

    /// <summary>The key (boxed).</summary>
    public object Key { get; }

    /// <summary>What it lends to callers that need not wait; never lent by a partition with rates.</summary>
    public PartitionLoan Loan { get; } = new();

    /// <summary>Permits held now: as last published, and what callers claimed from the loan since.</summary>
    public int Running => Math.Max(0, _running + (int)Loan.Claimed);

    /// <summary>Callers waiting now, as last published.</summary>
    public int Waiting => _waiting;

    /// <summary>
    /// What the callers waiting now asked for, summed, as last published with <see cref="Waiting"/>: permits in a
    /// concurrency partition, token estimates in a model-API one (its gate's <see cref="PermitGate.Queued"/>; 0 without
    /// a gate, where nobody waits). The permits its <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/>
    /// adapter reports queued.
    /// </summary>
    public long Queued => Volatile.Read(ref _queued);

    /// <summary>
    /// Leases granted for this key by the limiter's <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/>
    /// views, since this partition was made: a key whose partition was dropped for idleness starts again at 0 in the next
    /// one, as a partition of RateLimiting's own partitioned limiter does once its idle limiter is replaced.
    /// </summary>
    public long SuccessfulLeases => _leases.Successful;

    /// <summary>
    /// A partition with rates: the tokens a call could take now — those its token rate has, while a slot and a request
    /// are free too and nobody waits (a newcomer would queue behind the waiter), else 0 — the permits its
    /// <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/> adapter reports available, as the
    /// unpartitioned model-API adapter reports its loan's tokens. Published at the end of every turn; a read past the
    /// time a rate gains by itself takes the free turn to bring it up to date (a taken turn publishes as it ends).
    /// </summary>
    public long AvailableTokens
    {
        get
        {
            if (_shared.Now.Ticks >= Volatile.Read(ref _freeTokensUntil) && _state == PartitionState.Live && TryTake())
            {
                GiveBack(); // its rest publishes the tokens as of now
            }

            return Volatile.Read(ref _freeTokens);
        }
    }

    /// <summary>
    /// A partition with rates: how long from the actor's time now until a rate gains by itself (a bucket's refill, a
    /// window's segment sliding out), when <see cref="AvailableTokens"/> may change without a call; <c>null</c> when no
    /// rate is due to gain. Read after <see cref="AvailableTokens"/>, which brings both up to date.
    /// </summary>
    public TimeSpan? TokensGainIn
    {
        get
        {
            var until = Volatile.Read(ref _freeTokensUntil);
            return until == long.MaxValue ? null : TimeSpan.FromTicks(Math.Max(0, until - _shared.Now.Ticks));
        }
    }

    /// <summary>Failed leases given for this key by the limiter's RateLimiting views, since this partition was made (as <see cref="SuccessfulLeases"/>).</summary>
    public long FailedLeases => _leases.Failed;

    /// <inheritdoc />
    public int IdleSweeps { get; set; }

    /// <summary>The actor's time this partition's wake is queued for (the actor's own field); <see cref="TimeSpan.MaxValue"/> when none is.</summary>
    public TimeSpan WakeQueuedAt { get; set; } = TimeSpan.MaxValue;

    /// <summary>Whether it has a gate now (someone waited since the last sweep, or it has rates).</summary>
    internal bool HasGate => _gate is not null;

    /// <summary>Counts a lease a RateLimiting view hands out for this key, on any thread, without a lock or a message.</summary>
    /// <param name="acquired">Whether it was granted (else it failed).</param>
    public void CountLease(bool acquired) => _leases.Count(acquired);

    /// <summary>
    /// A facade's request: granted at once when nobody waits and it fits, else queued in the lean FIFO when it asks the
    /// common thing and there is room, else through the gate (made now, if the partition has none).
    /// </summary>
    public void Offer(AcquireRequest request)
    {
        request.Releaser = this;
        if (_gate is null)
        {
            var demand = request.Demand;
            if (_fifo.Count == 0 && demand.Permits <= _shared.Settings.MaxRunning - _held)
            {
                GrantLean(request, demand, waited: false);
                return;
            }

            if (FifoWaiters.Takes(request.Priority, request.TimeLeft) && demand.Permits <= _shared.Settings.MaxRunning
                && _fifo.Count < (_shared.Settings.MaxQueued ?? int.MaxValue))
            {
                QueueLean(request);
                return;
            }

            EnsureGate(); // it rejects, queues with a deadline or a priority, or turns away what exceeds the limit
        }

        _gate!.Offer(request);
    }

    /// <summary>A lease's permits come back; the gate, if any, hands them on in order.</summary>
    public void Release(int permits)
    {
        var held = _pool?.InUse ?? _held;
        if (held < permits)
        {
            _shared.ReleasedTooMany(Key, permits, held);
            return;
        }

        if (_gate is null)
        {
            _held -= permits;
            GrantLeanOrPublish();
            return;
        }

        _gate.Release(permits == 1 ? PermitDemand.One : new PermitDemand(permits));
    }

    /// <summary>A holder reports the tokens it used (a partition with rates always has its gate).</summary>
    public void Settle(SettleTokens message)
    {
        _shared.RateTelemetry?.Settled(message.ActualTokens);
        _gate?.Settle(message.Charged, message.ActualTokens);
    }

    /// <summary>A cancelled waiter leaves the queue, if it stands in it, and whoever it blocked may go.</summary>
    public void Withdraw(PermitWaiter waiter)
    {
        if (_gate is not null)
        {
            _gate.Withdraw(waiter);
        }
        else if (_fifo.Remove(waiter, this))
        {
            GrantLeanOrPublish();
        }
    }
}
