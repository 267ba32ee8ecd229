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
        Receive<CoordinatorProtocol.Acquire>(message => Gate.Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Set>(_ => HandleSet());
    }

    public static Props Props(EventState state) => Akka.Actor.Props.Create(() => new EventCoordinator(state));

    /// <inheritdoc />
    protected override void OnStopped(ObjectDisposedException disposed) => _state.Abandon(disposed);

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

/// <summary>
/// The event's flag and the one task every facade caller awaits. The flag is set once and never cleared, so the facade
/// raises it at once when <c>Set</c> is called and completes the shared task itself; the coordinator only serves actor
/// callers. Setting and joining race without a lock: each side makes its write with a full fence and then reads the
/// other's, so at least one of them sees both and completes the task (<c>TrySetResult</c> is idempotent).
/// </summary>
internal sealed class EventState : PrimitiveState
{
    private int _isSet;

    /// <summary>Non-zero once <see cref="Abandon"/> ran: the event is gone.</summary>
    private int _abandoned;

    /// <summary>The task all facade callers share; created by the first to wait (one CAS from <c>null</c>), never replaced.</summary>
    private TaskCompletionSource? _cohort;

    public bool IsSet => Volatile.Read(ref _isSet) != 0;

    /// <summary>
    /// Whether the event is gone (<see cref="Abandon"/> ran: disposed, or its actor system stopped). The facade then
    /// refuses <c>Set</c> and <c>WaitAsync</c> as after a disposal: the abandonment answered the waiters it had, and an
    /// event whose system stopped must not come back to life for later ones (review round 40, second reading: a
    /// <c>Set</c> after the stop was accepted, and the next wait succeeded where the one before it had failed).
    /// </summary>
    public bool IsAbandoned => Volatile.Read(ref _abandoned) != 0;

    public Task? Cohort => Volatile.Read(ref _cohort)?.Task;

    /// <summary>The task to await until the event is set: the shared one, created here by the first caller.</summary>
    public Task Join()
    {
        var cohort = Volatile.Read(ref _cohort);
        if (cohort is null)
        {
            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cohort = Interlocked.CompareExchange(ref _cohort, mine, null) ?? mine;
            if (IsSet)
            {
                cohort.TrySetResult(); // a Set that ran between our check and our publish did not see the task
            }
        }

        return cohort.Task;
    }

    public void MarkSet()
    {
        Interlocked.Exchange(ref _isSet, 1);
        Volatile.Read(ref _cohort)?.TrySetResult();
    }

    /// <summary>
    /// The event is gone (disposed, or its actor system stopped): fails the shared wait unless it was set first, and
    /// then completes it. The shared task it makes is what every later <see cref="Join"/> returns without looking at the
    /// flag, so it must be answered either way: left pending for a set event, a caller that had found the event unset
    /// just before the set and joined after this waited for ever (review round 40).
    /// </summary>
    public void Abandon(ObjectDisposedException disposed)
    {
        Interlocked.Exchange(ref _abandoned, 1);
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cohort = Interlocked.CompareExchange(ref _cohort, mine, null) ?? mine;
        if (IsSet)
        {
            cohort.TrySetResult();
        }
        else
        {
            cohort.TrySetException(disposed);
        }
    }
}
