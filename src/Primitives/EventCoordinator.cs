using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncEvent"/>'s flag and waiters.</summary>
internal sealed class EventCoordinator : CoordinatorActor
{
    private readonly EventState _state;
    private bool _set;

    public EventCoordinator(EventState state)
        : base(nameof(AsyncEvent), state)
    {
        _state = state;
        Receive<Waiter>(Offer); // a facade caller waits for the event: the waiter is the message
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Set>(_ => HandleSet());
    }

    public static Props Props(EventState state) => Akka.Actor.Props.Create(() => new EventCoordinator(state));

    /// <inheritdoc />
    protected override void Publish() => _state.MarkSet(_set);

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        // An event holds nothing for its waiters; their waits are already withdrawn.
    }

    private void Offer(Waiter waiter)
    {
        if (_set)
        {
            waiter.TryGrant();
        }
        else if (!waiter.IsAbandoned)
        {
            Waiters.Enqueue(waiter);
        }
    }

    private void HandleSet()
    {
        _set = true;
        Publish();
        Waiters.DrainAll(waiter => waiter.TryGrant());
    }
}

/// <summary>The event's flag: set once, never cleared, so the facade may also raise it at once when <c>Set</c> is called.</summary>
internal sealed class EventState : PrimitiveState
{
    private volatile bool _isSet;

    public bool IsSet => _isSet;

    public void MarkSet(bool isSet)
    {
        if (isSet)
        {
            _isSet = true;
        }
    }
}
