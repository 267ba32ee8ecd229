using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>
/// The one owner of an <see cref="AsyncSemaphore"/>'s waiters; its permits are the <see cref="SemaphoreState"/> shared
/// with the facade, whose callers take and return permits without a message while nobody waits. Every waiter it
/// serves was announced in that state (by the facade before sending it, here for an actor) and leaves it exactly once.
/// </summary>
internal sealed class SemaphoreCoordinator : CoordinatorActor
{
    private readonly SemaphoreState _state;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Permits held by actor callers, released if the actor stops.</summary>
    private readonly Dictionary<IActorRef, int> _actorPermits = [];

    public SemaphoreCoordinator(SemaphoreState state)
        : base(nameof(AsyncSemaphore), state, state)
    {
        _state = state;
        Receive<PrimitiveWaiter>(waiter => _state.Offer(Gate, waiter)); // a facade caller announced itself, then sent its waiter
        Receive<SemaphoreRelease>(_ =>
        {
            // The facade counted the release in the word; the sweep before this message has granted whom it lets in.
        });
        Receive<CoordinatorProtocol.Acquire>(HandleProtocolAcquire);
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(SemaphoreState state) => Akka.Actor.Props.Create(() => new SemaphoreCoordinator(state));

    /// <inheritdoc />
    public override void Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        if (grant.Waited)
        {
            _state.Leave(); // it left the queue; a waiter granted on arrival leaves in Offer
        }
    }

    /// <inheritdoc />
    public override void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        if (waiter.Owner is IActorRef actor)
        {
            _actorPermits[actor] = _actorPermits.GetValueOrDefault(actor) + 1;
        }
    }

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        _state.Sweep(Gate);
        return base.AroundReceive(receive, message);
    }

    /// <inheritdoc />
    protected override void Withdrawn(PermitWaiter waiter) => _state.Leave();

    /// <inheritdoc />
    protected override void OnStopped(ObjectDisposedException disposed) => _state.Close();

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        if (_actorPermits.Remove(owner, out var held))
        {
            var returned = 0;
            while (returned < held && _state.TryRelease(out _))
            {
                returned++;
            }

            if (returned < held)
            {
                _log.Warning("Actor {0} stopped holding {1} permits; {2} did not fit under the semaphore's maximum ({3}) and were dropped",
                    owner.Path, held, held - returned, int.MaxValue);
            }

            if (returned > 0)
            {
                Gate.Release(new PermitDemand(returned));
            }
        }
    }

    private void HandleProtocolAcquire(CoordinatorProtocol.Acquire message)
    {
        // Counted before it is offered, so no facade caller takes a permit past it; the sweep after the count is the
        // one the gate's copy may rely on.
        _state.Announce();
        _state.Sweep(Gate);
        _state.Offer(Gate, ActorWaiter(message.RequestId));
    }

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!_actorPermits.TryGetValue(Sender, out var held))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "This actor holds no permit of the semaphore"));
            return;
        }

        if (!_state.TryRelease(out _))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, SemaphoreState.FullMessage));
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

        Gate.Release(PermitDemand.One);
    }
}

/// <summary>A facade release, already counted in <see cref="SemaphoreState"/>, found a waiter announced: the coordinator must sweep.</summary>
internal sealed class SemaphoreRelease : IDeadLetterSuppression
{
    public static readonly SemaphoreRelease Instance = new();
}
