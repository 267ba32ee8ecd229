using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncSemaphore"/>'s waiters; its permits are the <see cref="SemaphoreState"/> shared with the facade.</summary>
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
        Receive<PrimitiveWaiter>(waiter => Gate.Offer(waiter)); // a facade caller asks for a permit: the waiter is the message
        Receive<SemaphoreRelease>(_ => Gate.Release(PermitDemand.One)); // the facade has counted the release already
        Receive<CoordinatorProtocol.Acquire>(message => Gate.Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(SemaphoreState state) => Akka.Actor.Props.Create(() => new SemaphoreCoordinator(state));

    /// <inheritdoc />
    public override void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        if (waiter.Owner is IActorRef actor)
        {
            _actorPermits[actor] = _actorPermits.GetValueOrDefault(actor) + 1;
        }
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        if (_actorPermits.Remove(owner, out var held))
        {
            var returned = 0;
            while (returned < held && _state.TryRelease())
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

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!_actorPermits.TryGetValue(Sender, out var held))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "This actor holds no permit of the semaphore"));
            return;
        }

        if (!_state.TryRelease())
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

/// <summary>A facade release, already counted in <see cref="SemaphoreState"/>, reaches the coordinator.</summary>
internal sealed class SemaphoreRelease : IDeadLetterSuppression
{
    public static readonly SemaphoreRelease Instance = new();
}
