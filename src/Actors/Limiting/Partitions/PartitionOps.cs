using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>A lease of the partition gives <paramref name="permits"/> back (its loan was shut).</summary>
internal sealed class PartitionRelease(int permits) : IPartitionOp
{
    public int Permits { get; } = permits;

    /// <inheritdoc />
    public IPartitionOp? NextOp { get; set; }
}

/// <summary>A lease of the partition reports the tokens it used.</summary>
internal sealed class PartitionSettle(SettleTokens settle) : IPartitionOp
{
    public SettleTokens Settle { get; } = settle;

    /// <inheritdoc />
    public IPartitionOp? NextOp { get; set; }
}

/// <summary>A caller cancelled: its waiter leaves the partition's queue, if it stands in it.</summary>
internal sealed class PartitionWithdraw(PermitWaiter waiter) : IPartitionOp
{
    public PermitWaiter Waiter { get; } = waiter;

    /// <inheritdoc />
    public IPartitionOp? NextOp { get; set; }
}

/// <summary>The actor's timer reached the partition's wake: expire its waiters past their deadline, grant what a rate gives back.</summary>
internal sealed class PartitionWake : IPartitionOp
{
    /// <inheritdoc />
    public IPartitionOp? NextOp { get; set; }
}

/// <summary>The limiter stops: fail the partition's waiters, later requests and claims; <paramref name="closed"/> runs once it is done.</summary>
internal sealed class PartitionClose(Action closed) : IPartitionOp
{
    /// <summary>Tells whoever waits for the limiter's stop that this partition is closed.</summary>
    public void Closed() => closed();

    /// <inheritdoc />
    public IPartitionOp? NextOp { get; set; }
}

/// <summary>A partition's turn found a wake earlier than the one the actor holds for it (the actor's message).</summary>
internal sealed record PartitionWakeAt(Partition Partition, TimeSpan At) : Akka.Event.IDeadLetterSuppression;
