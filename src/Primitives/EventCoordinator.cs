using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncEvent"/>'s flag and waiters: a gate whose one policy is a latch.</summary>
internal sealed class EventCoordinator : CoordinatorActor
{
    private readonly EventState _state;

    /// <summary>The flag as the gate sees it: set only here, when the set reaches the coordinator.</summary>
    private readonly EventLatch _latch;

    public EventCoordinator(EventState state)
        : this(state, new EventLatch())
    {
    }

    private EventCoordinator(EventState state, EventLatch latch)
        : base(nameof(AsyncEvent), state, latch)
    {
        _state = state;
        _latch = latch;
        Receive<PrimitiveWaiter>(waiter => Gate.Offer(waiter)); // a facade caller waits for the event: the waiter is the message
        Receive<CoordinatorProtocol.Acquire>(message => Gate.Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Set>(_ => HandleSet());
    }

    public static Props Props(EventState state) => Akka.Actor.Props.Create(() => new EventCoordinator(state));

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        // An event holds nothing for its waiters; their waits are already withdrawn.
    }

    private void HandleSet()
    {
        _latch.IsSet = true;
        _state.MarkSet();
        Gate.Wake(); // every waiter fits now: all are granted, in order
    }

    /// <summary>An event as a permit policy: nothing fits until it is set, then everything does, for ever.</summary>
    private sealed class EventLatch : IPermitPolicy
    {
        public bool IsSet { get; set; }

        public PermitMeasure Measure => PermitMeasure.Calls;

        public bool IsTimed => false;

        public long Limit => long.MaxValue;

        public long InUse => 0;

        public long Available(TimeSpan now) => IsSet ? long.MaxValue : 0;

        public bool CanTake(long cost, TimeSpan now) => IsSet;

        public void Take(long cost, TimeSpan now)
        {
            // A set event grants everyone; nothing is used up.
        }

        public void Refund(long cost, TimeSpan now)
        {
        }

        public void Release(long cost, TimeSpan now)
        {
        }

        public void Settle(long charged, long actual, TimeSpan now)
        {
        }

        public TimeSpan NextAvailableAt(long cost, TimeSpan now) => IsSet ? now : TimeSpan.MaxValue;

        public void Resize(long limit) => throw new NotSupportedException("An event has no limit.");
    }
}

/// <summary>The event's flag: set once, never cleared, so the facade may also raise it at once when <c>Set</c> is called.</summary>
internal sealed class EventState : PrimitiveState
{
    private volatile bool _isSet;

    /// <summary>The wait all facade callers share (see <c>AsyncEvent.JoinCohort</c>); written once, by the first caller to wait.</summary>
    private Task? _cohort;

    public bool IsSet => _isSet;

    public Task? Cohort => Volatile.Read(ref _cohort);

    /// <summary>Publishes <paramref name="wait"/> as the shared wait unless another caller did first; returns the one that won.</summary>
    public Task OfferCohort(Task wait) => Interlocked.CompareExchange(ref _cohort, wait, null) ?? wait;

    public void MarkSet() => _isSet = true;
}
