using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncSemaphore"/>'s permits and waiters.</summary>
internal sealed class SemaphoreCoordinator : CoordinatorActor
{
    private readonly SemaphoreState _state;

    /// <summary>Permits held by actor callers, released if the actor stops.</summary>
    private readonly Dictionary<IActorRef, int> _actorPermits = [];

    /// <summary>Free permits.</summary>
    private int _value;

    public SemaphoreCoordinator(int initialValue, SemaphoreState state)
        : base(nameof(AsyncSemaphore), state)
    {
        _value = initialValue;
        _state = state;
        Receive<Waiter>(Offer); // a facade caller asks for a permit: the waiter is the message
        Receive<SemaphoreRelease>(_ => ReleaseOne());
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
        Publish();
    }

    public static Props Props(int initialValue, SemaphoreState state) => Akka.Actor.Props.Create(() => new SemaphoreCoordinator(initialValue, state));

    /// <inheritdoc />
    protected override void Publish() => _state.Value = _value;

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        if (_actorPermits.Remove(owner, out var held))
        {
            for (var i = 0; i < held; i++)
            {
                ReleaseOne();
            }
        }
    }

    private void Offer(Waiter waiter)
    {
        if (waiter.IsAbandoned)
        {
            return;
        }

        if (_value > 0 && Waiters.IsEmpty)
        {
            TryGrant(waiter);
        }
        else
        {
            Waiters.Enqueue(waiter);
        }
    }

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!_actorPermits.TryGetValue(Sender, out var held))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "This actor holds no permit of the semaphore"));
            return;
        }

        if (held == 1)
        {
            _actorPermits.Remove(Sender);
        }
        else
        {
            _actorPermits[Sender] = held - 1;
        }

        ReleaseOne();
    }

    /// <summary>A permit comes back: to the oldest waiter still waiting, else to the pool.</summary>
    private void ReleaseOne()
    {
        _value++;
        while (_value > 0 && Waiters.Dequeue() is { } waiter)
        {
            TryGrant(waiter);
        }

        Publish();
    }

    private void TryGrant(Waiter waiter)
    {
        _value--;
        Publish();
        if (!waiter.TryGrant())
        {
            _value++;
            Publish();
            return;
        }

        if (waiter.ReplyTo is { } actor)
        {
            _actorPermits[actor] = _actorPermits.GetValueOrDefault(actor) + 1;
        }
    }
}

internal sealed class SemaphoreRelease : Akka.Event.IDeadLetterSuppression
{
    public static readonly SemaphoreRelease Instance = new();
}

/// <summary>The permit count the coordinator publishes, before any grant completes.</summary>
internal sealed class SemaphoreState : PrimitiveState
{
    private volatile int _value;

    public int Value
    {
        get => _value;
        set => _value = value;
    }
}
