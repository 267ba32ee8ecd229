using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>A lease of the partition reports the tokens it used.</summary>
internal sealed class PartitionSettle(SettleTokens settle) : ITurnOp
{
    public SettleTokens Settle { get; } = settle;

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>A caller cancelled: its waiter leaves the partition's queue, if it stands in it.</summary>
internal sealed class PartitionWithdraw(PermitWaiter waiter) : ITurnOp
{
    public PermitWaiter Waiter { get; } = waiter;

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>The actor's timer reached the partition's wake: expire its waiters past their deadline, grant what a rate gives back.</summary>
internal sealed class PartitionWake : ITurnOp
{
    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>A partition's turn found a wake earlier than the one the actor holds for it (the actor's message).</summary>
internal sealed record PartitionWakeAt(Partition Partition, TimeSpan At) : Akka.Event.IDeadLetterSuppression;
