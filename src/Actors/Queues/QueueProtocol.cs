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
    public sealed record Put(object? Item, long CorrelationId, TimeSpan? Timeout = null);

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
}
