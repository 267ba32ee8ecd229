using ActorQueue.Primitives.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncSemaphore"/>'s waiters; the free permits live in <see cref="SemaphoreState"/>.</summary>
internal sealed class SemaphoreCoordinator : CoordinatorActor
{
    private readonly SemaphoreState _state;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Permits held by actor callers, released if the actor stops.</summary>
    private readonly Dictionary<IActorRef, int> _actorPermits = [];

    public SemaphoreCoordinator(SemaphoreState state)
        : base(nameof(AsyncSemaphore), state)
    {
        _state = state;
        Receive<Waiter>(Offer); // a facade caller asks for a permit: the waiter is the message
        Receive<SemaphoreRelease>(_ => GrantWaiting()); // the facade has already added the permit
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(SemaphoreState state) => Akka.Actor.Props.Create(() => new SemaphoreCoordinator(state));

    /// <inheritdoc />
    protected override void Publish()
    {
        // The free permits are written in place (see SemaphoreState), before any grant completes.
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        if (_actorPermits.Remove(owner, out var held))
        {
            var returned = 0;
            while (returned < held && _state.TryAdd())
            {
                returned++;
            }

            if (returned < held)
            {
                _log.Warning("Actor {0} stopped holding {1} permits; {2} did not fit under the semaphore's maximum ({3}) and were dropped",
                    owner.Path, held, held - returned, int.MaxValue);
            }

            GrantWaiting();
        }
    }

    private void Offer(Waiter waiter)
    {
        if (waiter.IsAbandoned)
        {
            return;
        }

        // Only with nobody ahead may a newcomer take a free permit: FIFO, no barging.
        if (Waiters.IsEmpty && _state.TryTake())
        {
            Grant(waiter);
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

        if (!_state.TryAdd())
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

        GrantWaiting();
    }

    /// <summary>Free permits go to the oldest waiters; a waiter is dequeued only once a permit is taken for it.</summary>
    private void GrantWaiting()
    {
        while (!Waiters.IsEmpty && _state.TryTake())
        {
            Grant(Waiters.Dequeue()!);
        }
    }

    /// <summary>
    /// Hands a permit already taken to <paramref name="waiter"/>. A waiter that cancelled meanwhile takes nothing and
    /// the permit goes back; if releases have meanwhile filled the semaphore to <see cref="int.MaxValue"/>, it is
    /// not added, since a permit beyond the maximum cannot exist.
    /// </summary>
    private void Grant(Waiter waiter)
    {
        if (!waiter.TryGrant())
        {
            _state.TryAdd();
            return;
        }

        if (waiter.ReplyTo is { } actor)
        {
            _actorPermits[actor] = _actorPermits.GetValueOrDefault(actor) + 1;
        }
    }
}

internal sealed class SemaphoreRelease : IDeadLetterSuppression
{
    public static readonly SemaphoreRelease Instance = new();
}

/// <summary>
/// The free permits, shared by the facade and the coordinator. The facade's <c>Release</c> adds a permit here (and
/// refuses one past <see cref="int.MaxValue"/>, synchronously) before it tells the coordinator; the coordinator takes a
/// permit here before it completes a grant and adds back actor releases. Every change is one atomic step, so the
/// count never wraps and a caller that was granted a permit sees it taken.
/// </summary>
internal sealed class SemaphoreState : PrimitiveState
{
    /// <summary>Why a release is refused.</summary>
    public const string FullMessage = "Releasing would raise the semaphore's value past its maximum, 2147483647 (int.MaxValue)";

    private int _value;

    public SemaphoreState(int initialValue) => _value = initialValue;

    /// <summary>Free permits now.</summary>
    public int Value => Volatile.Read(ref _value);

    /// <summary>Adds a free permit; <c>false</c> when there are already <see cref="int.MaxValue"/>.</summary>
    public bool TryAdd()
    {
        while (true)
        {
            var value = Volatile.Read(ref _value);
            if (value == int.MaxValue)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _value, value + 1, value) == value)
            {
                return true;
            }
        }
    }

    /// <summary>Takes a free permit; <c>false</c> when none is free.</summary>
    public bool TryTake()
    {
        while (true)
        {
            var value = Volatile.Read(ref _value);
            if (value <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _value, value - 1, value) == value)
            {
                return true;
            }
        }
    }
}
