namespace ActorQueue.Primitives;

/// <summary>
/// The lock's holder and depth: the one place they are kept. The coordinator writes the holder (and the depth it
/// starts with) before a grant completes, and adds a level for a reentry or removes one for an actor's release; the
/// holding flow's facade takes its own levels off atomically (<see cref="TryClaimRelease"/>, <see cref="ClaimAll"/>)
/// and tells the coordinator only when none is left. So a release is checked synchronously, and a second release
/// cannot pass the check while the first is on its way.
/// </summary>
internal sealed class LockState : Coordination.PrimitiveState
{
    private volatile object? _owner;
    private int _depth;
    private volatile int _conditionWaiters;

    /// <summary>
    /// Flows waiting on any condition of this lock. A waiter is counted before the lock passes to the next holder,
    /// so a holder that reads 0 knows no condition of the lock has a waiter to notify.
    /// </summary>
    public int ConditionWaiters
    {
        get => _conditionWaiters;
        set => _conditionWaiters = value;
    }

    /// <summary>The holder (a flow token or an actor); <c>null</c> when free.</summary>
    public object? Owner => _owner;

    /// <summary>How many levels the holder holds.</summary>
    public int Depth => Volatile.Read(ref _depth);

    /// <summary>The coordinator grants the lock: the depth first, so whoever sees the new holder sees its depth.</summary>
    public void Grant(object owner, int depth)
    {
        Volatile.Write(ref _depth, depth);
        _owner = owner;
    }

    /// <summary>The coordinator grants the holder one level more.</summary>
    public void Reenter() => Interlocked.Increment(ref _depth);

    /// <summary>The coordinator takes back a reentry whose caller withdrew at that instant.</summary>
    public void UndoReenter() => Interlocked.Decrement(ref _depth);

    /// <summary>The coordinator releases one level for an actor holder.</summary>
    /// <returns>The levels left.</returns>
    public int ReleaseOne() => Interlocked.Decrement(ref _depth);

    /// <summary>The coordinator frees the lock.</summary>
    public void Clear()
    {
        _owner = null;
        Volatile.Write(ref _depth, 0);
    }

    /// <summary>Takes one level for <paramref name="owner"/>; <c>false</c> when it holds none.</summary>
    /// <param name="owner">The releasing flow's token.</param>
    /// <param name="remaining">The levels <paramref name="owner"/> still holds after this one.</param>
    public bool TryClaimRelease(object owner, out int remaining)
    {
        while (true)
        {
            remaining = 0;
            if (!ReferenceEquals(_owner, owner))
            {
                return false;
            }

            var depth = Volatile.Read(ref _depth);
            if (depth <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _depth, depth - 1, depth) == depth)
            {
                remaining = depth - 1;
                return true;
            }
        }
    }

    /// <summary>Takes every level for <paramref name="owner"/> (a condition wait); 0 when it holds none.</summary>
    public int ClaimAll(object owner) => ReferenceEquals(_owner, owner) ? Interlocked.Exchange(ref _depth, 0) : 0;

    /// <summary>Whether <paramref name="owner"/> holds the lock, as far as the mirror knows.</summary>
    public bool IsHeldBy(object? owner) => owner is not null && ReferenceEquals(_owner, owner) && Depth > 0;
}
