namespace ActorQueue.Actors;

/// <summary>What a durable router journals: its events and its snapshot, written by <see cref="DurableCodec"/>.</summary>
internal interface IDurableQueueMessage;

/// <summary>An item was accepted: it is acknowledged to its caller only once this is written.</summary>
/// <param name="Id">The item's number in its queue.</param>
/// <param name="Priority">Higher runs first.</param>
/// <param name="DueTicks">UTC ticks before which it must not run; 0 for at once.</param>
/// <param name="Payload">The item as System.Text.Json UTF-8.</param>
internal sealed record ItemAccepted(long Id, int Priority, long DueTicks, byte[] Payload) : IDurableQueueMessage;

/// <summary>
/// An item was handed to a worker or getter. No longer written (a try counts when it ends: <see cref="ItemRetrying"/>,
/// <see cref="ItemDeadLettered"/>); still read, and ignored, in journals that have it.
/// </summary>
internal sealed record ItemStarted(long Id) : IDurableQueueMessage;

/// <summary>An item finished successfully: it never runs again.</summary>
internal sealed record ItemCompleted(long Id) : IDurableQueueMessage;

/// <summary>An item failed (one more try spent) and will be tried again at <paramref name="DueTicks"/>.</summary>
internal sealed record ItemRetrying(long Id, long DueTicks, string Error) : IDurableQueueMessage;

/// <summary>An item failed its last try (one more try spent) and is a dead letter.</summary>
internal sealed record ItemDeadLettered(long Id, string Error) : IDurableQueueMessage;

/// <summary>A dead letter was put back in the queue with its tries reset.</summary>
internal sealed record ItemRequeued(long Id) : IDurableQueueMessage;

/// <summary>Why an item left the queue without running.</summary>
internal enum RemovalReason : byte
{
    /// <summary>Its put was cancelled by the caller while being written: it never counted.</summary>
    Withdrawn,

    /// <summary>Handed back by a drain.</summary>
    Drained,

    /// <summary>A dead letter that was purged.</summary>
    Purged,
}

/// <summary>An item left the queue without running (<see cref="RemovalReason"/>).</summary>
internal sealed record ItemRemoved(long Id, RemovalReason Reason) : IDurableQueueMessage;

/// <summary>
/// Events written as one journal record, in order: what the router had to write when its last write ended (puts that
/// arrived together, completions, retries), so the journal sees one row per write instead of one per event.
/// </summary>
internal sealed record DurableBatch(IReadOnlyList<IDurableQueueMessage> Events) : IDurableQueueMessage;

/// <summary>One item as a snapshot keeps it.</summary>
internal sealed record StoredItem(long Id, int Priority, long DueTicks, int Attempts, string? LastError, bool Dead, ReadOnlyMemory<byte> Payload);

/// <summary>Everything a durable router needs to go on, as of one journal sequence number; the events before it are deleted.</summary>
internal sealed record DurableSnapshot(long NextId, DurableCounts Counts, IReadOnlyList<StoredItem> Items) : IDurableQueueMessage;

/// <summary>The counters a durable queue keeps across restarts.</summary>
internal readonly record struct DurableCounts(long Enqueued, long Processed, long Errors, long Drained);
