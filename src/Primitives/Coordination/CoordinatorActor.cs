using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// What every primitive's coordinator shares: a <see cref="PermitGate"/> over the primitive's permits (a lock's one
/// holder, a semaphore's value, a capacity limiter's tokens, an event's latch), cancellation, watching actor owners,
/// the protocol's cancel, and failing every waiter with <see cref="ObjectDisposedException"/> when it stops. As the
/// gate's listener it publishes the waiting count; each primitive adds its own books by overriding the listener.
/// </summary>
internal abstract class CoordinatorActor : ReceiveActor, IPermitGateListener
{
    private readonly ActorQueueExtension _runtime;
    private readonly HashSet<IActorRef> _watched = [];
    private readonly string _typeName;
    private readonly PrimitiveState _published;
    private DisposeCoordinator? _dispose;

    protected CoordinatorActor(string typeName, PrimitiveState published, IPermitPolicy permits)
    {
        _typeName = typeName;
        _published = published;
        _runtime = ActorQueueExtension.Get(Context.System);
        Gate = new PermitGate(this, [permits]);
        Receive<WithdrawWaiter>(message => Withdraw(message.Waiter));
        Receive<CoordinatorProtocol.CancelAcquire>(HandleCancelAcquire);
        Receive<OwnerStopped>(message =>
        {
            _watched.Remove(message.Owner);
            foreach (var waiter in Gate.WithdrawWhere(w => Equals(w.Owner, message.Owner)))
            {
                Withdrawn(waiter);
            }

            HandleOwnerStopped(message.Owner);
        });
        Receive<DisposeCoordinator>(message =>
        {
            _dispose = message;
            Context.Stop(Self);
        });
    }

    /// <summary>Callers waiting for the primitive, in order, and the permits they wait for.</summary>
    protected PermitGate Gate { get; }

    /// <inheritdoc />
    public virtual void Publish(in PermitSnapshot now) => _published.Waiting = now.Waiting;

    /// <inheritdoc />
    public void Queued(PermitWaiter waiter)
    {
        // No primitive measures how long its callers wait.
    }

    /// <inheritdoc />
    public virtual void Granting(PermitWaiter waiter, in PermitGrant grant)
    {
    }

    /// <inheritdoc />
    public virtual void GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
    }

    /// <inheritdoc />
    public virtual void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
    }

    /// <inheritdoc />
    public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) =>
        // A primitive has no bound on waiters, no timeouts and no request beyond its limit: only disposal turns a waiter away.
        new ObjectDisposedException(_typeName, $"The {_typeName} has been disposed.");

    /// <inheritdoc />
    protected override void PreStart()
    {
        _runtime.CountCoordinator(+1);
        base.PreStart();
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Gate.RejectAll(PermitRejectionKind.Disposed);
        OnStopped(new ObjectDisposedException(_typeName, $"The {_typeName} has been disposed."));
        _published.Waiting = 0;
        _runtime.CountCoordinator(-1);
        _dispose?.Stopped.TrySetResult();
        base.PostStop();
    }

    /// <summary>Releases whatever a stopped actor held (its waits are already withdrawn).</summary>
    protected abstract void HandleOwnerStopped(IActorRef owner);

    /// <summary>A waiter left the queue without being granted (cancelled, or its actor stopped): forget it in the books.</summary>
    protected virtual void Withdrawn(PermitWaiter waiter)
    {
    }

    /// <summary>Fails waiters the subclass keeps outside the gate (condition waiters).</summary>
    protected virtual void OnStopped(ObjectDisposedException disposed)
    {
    }

    /// <summary>An actor caller: watch it, so that its waits and holds end when it stops.</summary>
    protected ActorWaiter ActorWaiter(long requestId)
    {
        if (_watched.Add(Sender))
        {
            Context.WatchWith(Sender, new OwnerStopped(Sender));
        }

        return new ActorWaiter(Sender, requestId, string.Empty, CoordinatorReplies.Instance);
    }

    private void Withdraw(PermitWaiter waiter)
    {
        if (Gate.Withdraw(waiter))
        {
            Withdrawn(waiter);
        }
    }

    private void HandleCancelAcquire(CoordinatorProtocol.CancelAcquire message)
    {
        var sender = Sender;
        foreach (var waiter in Gate.WithdrawWhere(w => w is ActorWaiter actor && actor.ReplyTo.Equals(sender) && actor.RequestId == message.RequestId))
        {
            Withdrawn(waiter);
            sender.Tell(new CoordinatorProtocol.Cancelled(message.RequestId));
        }
    }
}

/// <summary>What every coordinator publishes for synchronous reads; each primitive's state adds its own fields.</summary>
internal abstract class PrimitiveState
{
    private volatile int _waiting;

    /// <summary>Callers waiting in the coordinator's gate, as of its last change; written by the coordinator only.</summary>
    public int Waiting
    {
        get => _waiting;
        set => _waiting = value;
    }
}
