using System.Collections.Concurrent;
using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>The one owner of an <see cref="AsyncCapacityLimiter"/>'s tokens (a <see cref="PermitPool"/>), borrowers and waiters.</summary>
internal sealed class CapacityLimiterCoordinator : CoordinatorActor
{
    private readonly CapacityState _state;

    /// <summary>The tokens: one per borrower, as many as the total.</summary>
    private readonly PermitPool _tokens;

    /// <summary>The number of the last total applied: a set that arrives behind a later one changes nothing.</summary>
    private long _appliedSet;

    /// <summary>Borrowers holding a token, compared as the facade documents (<see cref="BorrowerComparer"/>).</summary>
    private readonly HashSet<object> _borrowers = new(BorrowerComparer.Instance);

    /// <summary>Borrowers waiting for a token, with their waiter (a borrower may wait or hold only once), compared as the holders are.</summary>
    private readonly Dictionary<object, PermitWaiter> _waiting = new(BorrowerComparer.Instance);

    public CapacityLimiterCoordinator(double totalTokens, CapacityState state)
        : this(state, new PermitPool(Capacity(totalTokens)))
    {
    }

    private CapacityLimiterCoordinator(CapacityState state, PermitPool tokens)
        : base(nameof(AsyncCapacityLimiter), state, tokens)
    {
        _state = state;
        _tokens = tokens;
        Receive<PrimitiveWaiter>(Offer); // a facade borrower asks for a token: the waiter is the message
        Receive<CapacityRelease>(message => Release(message.Borrower));
        Receive<SetTotalTokens>(HandleSetTotal);
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(double totalTokens, CapacityState state) =>
        Akka.Actor.Props.Create(() => new CapacityLimiterCoordinator(totalTokens, state));

    /// <inheritdoc />
    public override void Publish(in PermitSnapshot now)
    {
        base.Publish(now);
        _state.Borrowed = (int)now.InUse;
    }

    /// <inheritdoc />
    public override void Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        var borrower = waiter.Owner!;
        _waiting.Remove(borrower);
        _borrowers.Add(borrower);
        if (waiter is not BorrowerWaiter)
        {
            // An actor's grant is never lost (its cancel is a message this coordinator handles in turn): recorded before
            // the reply, so that its release finds it a holder. A facade borrower's is recorded by its waiter, once won.
            _state.Holders.TryAdd(borrower, 0);
        }
    }

    /// <inheritdoc />
    public override void GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
        _borrowers.Remove(waiter.Owner!);
        _state.Holders.TryRemove(waiter.Owner!, out _);
    }

    /// <inheritdoc />
    protected override void Withdrawn(PermitWaiter waiter)
    {
        if (_waiting.TryGetValue(waiter.Owner!, out var waiting) && ReferenceEquals(waiting, waiter))
        {
            _waiting.Remove(waiter.Owner!);
        }
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        if (_state.Holders.TryRemove(owner, out _))
        {
            Release(owner);
        }
    }

    // Borrowers are counted in an int and a total is at most int.MaxValue; infinity means no limit.
    private static long Capacity(double totalTokens) => double.IsPositiveInfinity(totalTokens) ? long.MaxValue : (long)totalTokens;

    private void Offer(PermitWaiter waiter)
    {
        if (waiter.IsWithdrawn)
        {
            return;
        }

        var borrower = waiter.Owner!;
        if (_waiting.TryGetValue(borrower, out var earlier) && earlier.IsWithdrawn && Gate.Withdraw(earlier))
        {
            // Its caller cancelled that wait and asked again before the withdrawal got here (a cancellation answers the
            // caller first and tells this coordinator after): that wait is over, so it does not make this one a second
            // ask (review round 40: the retry was refused as "already waiting").
            Withdrawn(earlier);
        }

        if (_borrowers.Contains(borrower) || _waiting.ContainsKey(borrower))
        {
            waiter.Fail(new InvalidOperationException("This borrower is already holding (or waiting for) one of this capacity limiter's tokens."));
            return;
        }

        if (Gate.Offer(waiter) == OfferOutcome.Queued)
        {
            _waiting.Add(borrower, waiter);
        }
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

    /// <summary>A token comes back (the facade or the handler has already taken the borrower off the mirror).</summary>
    private void Release(object borrower)
    {
        if (_borrowers.Remove(borrower))
        {
            Gate.Release(PermitDemand.One);
        }
    }

    private void HandleSetTotal(SetTotalTokens message)
    {
        // Raising the total wakes waiters in FIFO order; lowering it takes no token back. The mirror is the facade's
        // (written in the order of the sets' numbers): a write here would put back an older total over a newer one
        // still queued behind this message.
        if (message.Set < _appliedSet)
        {
            return; // a later set, sent first, has been applied already; the mirror holds the later one too
        }

        _appliedSet = message.Set;
        Gate.Resize(_tokens, Capacity(message.Total));
    }
}

internal sealed record CapacityRelease(object Borrower) : Akka.Event.IDeadLetterSuppression;

/// <summary>
/// A facade borrower's waiter. Its grant and its cancellation race; the borrower becomes a holder on the mirror only
/// once the grant has won, before the caller resumes (so that its release finds it a holder). Written by the coordinator
/// before the grant was decided, a lost grant left the cancelled borrower a holder until the coordinator took it out
/// again, and a release in between was taken instead of refused (review h151).
/// </summary>
internal sealed class BorrowerWaiter(IActorRef coordinator, object borrower, CapacityState state) : PrimitiveWaiter(coordinator, borrower)
{
    /// <inheritdoc />
    protected override bool ResultOf(in PermitGrant grant)
    {
        state.Holders.TryAdd(Owner!, 0);
        return true;
    }
}

/// <summary>A new total, numbered in the order its setter took a number (<see cref="CapacityState.NextSet"/>).</summary>
internal sealed record SetTotalTokens(double Total, long Set);

/// <summary>
/// What the coordinator publishes: the borrowed count, the total, and the set of holders. The holders are added
/// before a grant completes; a facade release takes its borrower out atomically before telling the coordinator,
/// so a release by a non-holder (or a second release) fails synchronously.
/// </summary>
internal sealed class CapacityState : PrimitiveState
{
    private volatile int _borrowed;

    /// <summary>The total and the number of the set that made it; replaced whole, only by a later set.</summary>
    private volatile TotalSetting _total = new(0, 0);

    /// <summary>The last number a set took.</summary>
    private long _lastSet;

    public ConcurrentDictionary<object, byte> Holders { get; } = new(BorrowerComparer.Instance);

    public int Borrowed
    {
        get => _borrowed;
        set => _borrowed = value;
    }

    /// <summary>The total as the facade last set it: what the latest set made, never put back by an older one.</summary>
    public double Total => _total.Total;

    /// <summary>A number for a new set, in the order setters take them.</summary>
    public long NextSet() => Interlocked.Increment(ref _lastSet);

    /// <summary>Makes <paramref name="total"/> the total unless a set with a later number has already.</summary>
    public void SetTotal(double total, long set)
    {
        var current = _total;
        var mine = new TotalSetting(total, set);
        while (current.Set < set)
        {
            var seen = Interlocked.CompareExchange(ref _total, mine, current);
            if (ReferenceEquals(seen, current))
            {
                return;
            }

            current = seen;
        }
    }

    private sealed record TotalSetting(double Total, long Set);
}

/// <summary>
/// Who is one borrower: a facade's borrower of a reference type by reference (as <c>AcquireOnBehalfOfAsync</c>
/// documents: two distinct objects that compare equal are two borrowers), one of a value type by its value (it has no
/// identity: each call boxes it anew, so by reference the token it took could never be given back, and the same id
/// could take a second), an actor by its <see cref="IActorRef"/> equality (one actor may reach the coordinator through
/// more than one reference object). The holders, the borrowers and the waiting set all use it, so they agree on who holds.
/// </summary>
internal sealed class BorrowerComparer : IEqualityComparer<object>
{
    public static readonly BorrowerComparer Instance = new();

    /// <inheritdoc />
    public new bool Equals(object? x, object? y) => x switch
    {
        IActorRef actor => actor.Equals(y),
        ValueType value => value.Equals(y),
        _ => ReferenceEquals(x, y),
    };

    /// <inheritdoc />
    public int GetHashCode(object obj) =>
        obj is IActorRef or ValueType ? obj.GetHashCode() : System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
}
