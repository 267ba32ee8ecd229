namespace ActorQueue.Actors;

/// <summary>
/// A queue router's message protocol for callers that are actors. Replies go to the sender. Items put by actors
/// join the same FIFO as items put through the facade and are processed by the same workers.
/// </summary>
public static class QueueProtocol
{
    /// <summary>
    /// Puts an item. The reply is <see cref="Accepted"/>, <see cref="RejectedFull"/> (no space within
    /// <paramref name="Timeout"/>, one backpressure event), <see cref="RejectedState"/> (the queue is not processing)
    /// or <see cref="RejectedInvalid"/> (the item is not of the queue's item type).
    /// </summary>
    /// <param name="Item">The item; must be of the queue's item type.</param>
    /// <param name="CorrelationId">The caller's number for this put, echoed in the reply.</param>
    /// <param name="Timeout">How long to wait for space; <c>null</c> or zero for no wait, <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> to wait until space or stop.</param>
    public sealed record Put(object? Item, long CorrelationId, TimeSpan? Timeout = null)
    {
        /// <summary>Higher runs first; items of one priority run in the order they were accepted. Default 0.</summary>
        public int Priority { get; init; }

        /// <summary>The item is not handed out before this time; <c>null</c> for at once.</summary>
        public DateTimeOffset? NotBefore { get; init; }

        /// <summary>
        /// The sender's trace context (for example <c>Activity.Current?.Context</c> in the sending actor), carried with the
        /// item as a facade put carries its caller's: the worker runs it under a <c>process {queue}</c> span that is a
        /// child of this context, and a <c>GetAsync</c> taker records a <c>receive {queue}</c> span linked to it.
        /// <c>default</c> (the default) for none. Kept by queues in memory, within one process; a durable queue does not
        /// journal it.
        /// </summary>
        public System.Diagnostics.ActivityContext TraceContext { get; init; }
    }

    /// <summary>The item is in the queue.</summary>
    /// <param name="CorrelationId">The put this answers.</param>
    public sealed record Accepted(long CorrelationId);

    /// <summary>The queue stayed full for the whole timeout; the item was not taken.</summary>
    /// <param name="CorrelationId">The put this answers.</param>
    public sealed record RejectedFull(long CorrelationId);

    /// <summary>The queue is not processing; the item was not taken.</summary>
    /// <param name="CorrelationId">The put this answers.</param>
    /// <param name="Status">The queue's status.</param>
    /// <param name="Reason">The same text a facade caller gets in <see cref="QueueStateException"/>.</param>
    public sealed record RejectedState(long CorrelationId, QueueStatus Status, string Reason);

    /// <summary>The item is not of the queue's item type; it was not taken.</summary>
    /// <param name="CorrelationId">The put this answers.</param>
    /// <param name="Reason">What was wrong.</param>
    public sealed record RejectedInvalid(long CorrelationId, string Reason);

    /// <summary>Asks for the queue's status and counters; the reply is <see cref="Status"/>.</summary>
    public sealed record GetStatus
    {
        /// <summary>The one instance.</summary>
        public static GetStatus Instance { get; } = new();
    }

    /// <summary>A consistent view of the queue, taken between two messages.</summary>
    /// <param name="State">The lifecycle status.</param>
    /// <param name="Size">Items waiting in the queue.</param>
    /// <param name="Capacity">How many items the queue holds.</param>
    /// <param name="WorkerCount">Workers that take new items.</param>
    /// <param name="Metrics">The counters.</param>
    public sealed record Status(QueueStatus State, int Size, int Capacity, int WorkerCount, QueueMetrics Metrics);

    /// <summary>Asks for the queue's dead letters; the reply is <see cref="DeadLetterList"/> (empty for a queue that is not durable).</summary>
    /// <param name="CorrelationId">The caller's number for this request, echoed in the reply.</param>
    public sealed record ListDeadLetters(long CorrelationId);

    /// <summary>The queue's dead letters, oldest first.</summary>
    /// <param name="CorrelationId">The request this answers.</param>
    /// <param name="Letters">Each a <c>DeadLetter&lt;T&gt;</c> of the queue's item type.</param>
    public sealed record DeadLetterList(long CorrelationId, IReadOnlyList<object> Letters);

    /// <summary>Puts dead letters back in the queue with their tries reset; the reply is <see cref="DeadLettersChanged"/>.</summary>
    /// <param name="CorrelationId">The caller's number for this request, echoed in the reply.</param>
    /// <param name="Ids">The dead letters' ids; <c>null</c> for all.</param>
    public sealed record RequeueDeadLetters(long CorrelationId, IReadOnlyList<long>? Ids = null);

    /// <summary>Deletes dead letters for good; the reply is <see cref="DeadLettersChanged"/>.</summary>
    /// <param name="CorrelationId">The caller's number for this request, echoed in the reply.</param>
    /// <param name="Ids">The dead letters' ids; <c>null</c> for all.</param>
    public sealed record PurgeDeadLetters(long CorrelationId, IReadOnlyList<long>? Ids = null);

    /// <summary>How many dead letters a requeue or purge changed (ids that are not dead letters are skipped).</summary>
    /// <param name="CorrelationId">The request this answers.</param>
    /// <param name="Count">How many were requeued or purged.</param>
    public sealed record DeadLettersChanged(long CorrelationId, int Count);
}
