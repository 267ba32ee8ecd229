using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>A facade's request for the dead letters.</summary>
internal sealed class DeadLetterQuery<T> : QueueCommand<IReadOnlyList<DeadLetter<T>>>;

/// <summary>A facade's requeue (or, with <see cref="Purge"/>, purge) of dead letters; answered with how many changed.</summary>
internal sealed class DeadLetterChange(IReadOnlyList<long>? ids, bool purge) : QueueCommand<int>
{
    /// <summary>The ids; <c>null</c> for every dead letter.</summary>
    public IReadOnlyList<long>? Ids { get; } = ids;

    public bool Purge { get; } = purge;
}

/// <summary>A worker's task → the durable router: how one try of item <see cref="Id"/> ended.</summary>
/// <param name="Id">The item.</param>
/// <param name="Attempt">Which try this was, from 1.</param>
/// <param name="Error">What the worker threw; <c>null</c> when it returned.</param>
/// <param name="Cancelled">The stop timeout cancelled the work: the item waits again, not counted as a failure.</param>
internal sealed record DurableItemDone(long Id, int Attempt, Exception? Error, bool Cancelled)
{
    /// <summary>
    /// Set when the item could not be read back and this "try" only reported it to the error handler: the reason its dead
    /// letter keeps, whatever try it was (no try can run it).
    /// </summary>
    public string? Unreadable { get; init; }
}

/// <summary>The clock says a delayed item is due.</summary>
internal sealed class DueTick : IDeadLetterSuppression
{
    public static readonly DueTick Instance = new();
}

/// <summary>The durable router to itself: write what gathered in the outbox (sent after the first event, so the puts already in the mailbox join it).</summary>
internal sealed class FlushWrites : IDeadLetterSuppression
{
    public static readonly FlushWrites Instance = new();
}

/// <summary>
/// A disposal's bound has passed (twice its timeout from when its stop came: <see cref="LifecycleWaiters.DisposalDeadline"/>):
/// the durable router stops waiting for what still holds it — its recovery, the tries and writes of a stop a restart
/// took over. Sent by the scheduler, not a timer of the router's, so it reaches an instance that is recovering, and one
/// made by a restart.
/// </summary>
internal sealed class DisposalOverdue : IDeadLetterSuppression
{
    public static readonly DisposalOverdue Instance = new();
}
