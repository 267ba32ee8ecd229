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

/// <summary>
/// The actor could not set the wake at <see cref="At"/> this partition asked for (the limit's clock threw
/// <see cref="Error"/>): in its turn, the waits that needed it fail (<see cref="UnsetWake"/>), and a later deadline asks
/// for a wake anew — unless the partition asked for an earlier wake since, which then serves them.
/// </summary>
internal sealed class PartitionWakeUnset(Exception error, TimeSpan at) : ITurnOp
{
    /// <summary>What the clock threw.</summary>
    public Exception Error { get; } = error;

    /// <summary>The time of the wake that could not be set.</summary>
    public TimeSpan At { get; } = at;

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>An op that does nothing: its turn's reclaim answers a shut made by a pusher late to its <c>Pushed</c>.</summary>
internal sealed class AnswerShutOp : ITurnOp
{
    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}
