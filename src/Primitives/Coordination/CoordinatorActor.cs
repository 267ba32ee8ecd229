using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// What every primitive's coordinator shares: the FIFO of waiters, cancellation, watching actor owners, the
/// protocol's cancel, and failing every waiter with <see cref="ObjectDisposedException"/> when it stops.
/// </summary>
internal abstract class CoordinatorActor : ReceiveActor
{
    private readonly ActorQueueExtension _runtime;
    private readonly HashSet<IActorRef> _watched = [];
    private readonly string _typeName;
    private readonly PrimitiveState _published;
    private DisposeCoordinator? _dispose;

    protected CoordinatorActor(string typeName, PrimitiveState published)
    {
        _typeName = typeName;
        _published = published;
        _runtime = ActorQueueExtension.Get(Context.System);
        Receive<CancelWait>(HandleCancelWait);
        Receive<CoordinatorProtocol.CancelAcquire>(HandleCancelAcquire);
        Receive<OwnerStopped>(message =>
        {
            _watched.Remove(message.Owner);
            Waiters.RemoveWhere(w => Equals(w.Owner, message.Owner));
            HandleOwnerStopped(message.Owner);
            Publish();
        });
        Receive<DisposeCoordinator>(message =>
        {
            _dispose = message;
            Context.Stop(Self);
        });
    }

    /// <summary>Callers waiting, oldest first.</summary>
    protected WaiterQueue<Waiter> Waiters { get; } = new();

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        _published.Waiting = Waiters.Count;
        return handled;
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        _runtime.CountCoordinator(+1);
        base.PreStart();
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        var disposed = new ObjectDisposedException(_typeName, $"The {_typeName} has been disposed.");
        Waiters.DrainAll(waiter => waiter.Fail(disposed));
        OnStopped(disposed);
        _published.Waiting = 0;
        _runtime.CountCoordinator(-1);
        _dispose?.Stopped.TrySetResult();
        base.PostStop();
    }

    /// <summary>Publishes the state for synchronous reads by the facade; called after every change and before a grant completes.</summary>
    protected abstract void Publish();

    /// <summary>Releases whatever a stopped actor held (its waits are already withdrawn).</summary>
    protected abstract void HandleOwnerStopped(IActorRef owner);

    /// <summary>Fails waiters the subclass keeps outside <see cref="Waiters"/> (condition waiters).</summary>
    protected virtual void OnStopped(ObjectDisposedException disposed)
    {
    }

    /// <summary>A facade caller cancelled; the default drops its waiter.</summary>
    protected virtual void HandleCancelWait(CancelWait message)
    {
        if (Waiters.Remove(message.Waiter))
        {
            Publish();
        }
    }

    /// <summary>An actor caller: watch it, so that its waits and holds end when it stops.</summary>
    protected Waiter ActorWaiter(long requestId)
    {
        if (_watched.Add(Sender))
        {
            Context.WatchWith(Sender, new OwnerStopped(Sender));
        }

        return new Waiter(Self, Sender, requestId);
    }

    private void HandleCancelAcquire(CoordinatorProtocol.CancelAcquire message)
    {
        var sender = Sender;
        var waiter = Waiters.Find(w => ReferenceEquals(w.ReplyTo, sender) && w.RequestId == message.RequestId);
        if (waiter is not null && Waiters.Remove(waiter))
        {
            sender.Tell(new CoordinatorProtocol.Cancelled(message.RequestId));
            Publish();
        }
    }
}

/// <summary>What every coordinator publishes for synchronous reads; each primitive's state adds its own fields.</summary>
internal abstract class PrimitiveState
{
    private volatile int _waiting;

    /// <summary>Callers waiting in the coordinator's FIFO, after the last message it handled.</summary>
    public int Waiting
    {
        get => _waiting;
        set => _waiting = value;
    }
}
