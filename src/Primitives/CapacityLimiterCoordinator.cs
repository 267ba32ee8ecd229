using System.Collections.Concurrent;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncCapacityLimiter"/>'s tokens, borrowers and waiters.</summary>
internal sealed class CapacityLimiterCoordinator : CoordinatorActor
{
    private readonly CapacityState _state;

    /// <summary>Borrowers holding a token.</summary>
    private readonly HashSet<object> _borrowers = [];

    /// <summary>Borrowers waiting for a token (a borrower may wait or hold only once).</summary>
    private readonly HashSet<object> _waiting = [];

    private double _total;

    public CapacityLimiterCoordinator(double totalTokens, CapacityState state)
        : base(nameof(AsyncCapacityLimiter), state)
    {
        _total = totalTokens;
        _state = state;
        Receive<Waiter>(Offer); // a facade borrower asks for a token: the waiter is the message
        Receive<CapacityRelease>(message => Release(message.Borrower));
        Receive<SetTotalTokens>(HandleSetTotal);
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(double totalTokens, CapacityState state) =>
        Akka.Actor.Props.Create(() => new CapacityLimiterCoordinator(totalTokens, state));

    /// <inheritdoc />
    protected override void Publish() => _state.Borrowed = _borrowers.Count;

    /// <inheritdoc />
    protected override void HandleCancelWait(CancelWait message)
    {
        if (Waiters.Remove(message.Waiter))
        {
            _waiting.Remove(message.Waiter.Owner);
        }
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        _waiting.Remove(owner);
        if (_borrowers.Contains(owner))
        {
            _state.Holders.TryRemove(owner, out _);
            Release(owner);
        }
    }

    private void Offer(Waiter waiter)
    {
        if (waiter.IsAbandoned)
        {
            return;
        }

        if (_borrowers.Contains(waiter.Owner) || _waiting.Contains(waiter.Owner))
        {
            waiter.Fail(new InvalidOperationException("This borrower is already holding (or waiting for) one of this capacity limiter's tokens."));
            return;
        }

        if (_borrowers.Count < _total && Waiters.IsEmpty)
        {
            TryGrant(waiter);
            return;
        }

        _waiting.Add(waiter.Owner);
        Waiters.Enqueue(waiter);
    }

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!_state.Holders.TryRemove(Sender, out _))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "This actor holds no token of the capacity limiter"));
            return;
        }

        Release(Sender);
    }

    /// <summary>A token comes back (the facade has already taken the borrower off the mirror).</summary>
    private void Release(object borrower)
    {
        _borrowers.Remove(borrower);
        GrantWaiting();
    }

    private void HandleSetTotal(SetTotalTokens message)
    {
        // Raising the total wakes waiters in FIFO order; lowering it takes no token back.
        _total = message.Total;
        _state.Total = message.Total;
        GrantWaiting();
    }

    private void GrantWaiting()
    {
        while (_borrowers.Count < _total && Waiters.Dequeue() is { } waiter)
        {
            _waiting.Remove(waiter.Owner);
            TryGrant(waiter);
        }

        Publish();
    }

    private void TryGrant(Waiter waiter)
    {
        _borrowers.Add(waiter.Owner);
        _state.Holders.TryAdd(waiter.Owner, 0);
        Publish();
        if (!waiter.TryGrant())
        {
            _borrowers.Remove(waiter.Owner);
            _state.Holders.TryRemove(waiter.Owner, out _);
            Publish();
        }
    }
}

internal sealed record CapacityRelease(object Borrower) : Akka.Event.IDeadLetterSuppression;

internal sealed record SetTotalTokens(double Total);

/// <summary>
/// What the coordinator publishes: the borrowed count, the total, and the set of holders. The holders are added
/// before a grant completes; a facade release takes its borrower out atomically before telling the coordinator,
/// so a release by a non-holder (or a second release) fails synchronously.
/// </summary>
internal sealed class CapacityState : PrimitiveState
{
    private volatile int _borrowed;
    private long _totalBits;

    public ConcurrentDictionary<object, byte> Holders { get; } = new(ReferenceEqualityComparer.Instance);

    public int Borrowed
    {
        get => _borrowed;
        set => _borrowed = value;
    }

    public double Total
    {
        get => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _totalBits));
        set => Interlocked.Exchange(ref _totalBits, BitConverter.DoubleToInt64Bits(value));
    }
}
