using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>A durable queue's dead letters: listed, requeued and purged through the router, which journals each change.</summary>
public sealed partial class BoundedQueue<T>
{
    /// <summary>The dead letters of a durable queue (items that failed every try), oldest first; empty for a queue in memory.</summary>
    /// <returns>Each with its id, item, tries and last error.</returns>
    public Task<IReadOnlyList<DeadLetter<T>>> DeadLettersAsync()
    {
        ThrowIfDisposed();
        if (Durability is null)
        {
            return Task.FromResult<IReadOnlyList<DeadLetter<T>>>([]);
        }

        var query = new DeadLetterQuery<T>();
        Router.Tell(query, ActorRefs.NoSender);
        return query.Completion.Task;
    }

    /// <summary>Puts dead letters back in the queue with their tries reset (they run again while the queue processes).</summary>
    /// <param name="ids">The dead letters' ids; <c>null</c> for all. Ids that are not dead letters are skipped.</param>
    /// <returns>How many were requeued, once that is journaled.</returns>
    public Task<int> RequeueDeadLettersAsync(IReadOnlyList<long>? ids = null) => ChangeDeadLettersAsync(ids, purge: false);

    /// <summary>Deletes dead letters for good.</summary>
    /// <param name="ids">The dead letters' ids; <c>null</c> for all. Ids that are not dead letters are skipped.</param>
    /// <returns>How many were purged, once that is journaled.</returns>
    public Task<int> PurgeDeadLettersAsync(IReadOnlyList<long>? ids = null) => ChangeDeadLettersAsync(ids, purge: true);

    private Task<int> ChangeDeadLettersAsync(IReadOnlyList<long>? ids, bool purge)
    {
        ThrowIfDisposed();
        if (Durability is null)
        {
            return Task.FromResult(0);
        }

        var change = new DeadLetterChange(ids, purge);
        Router.Tell(change, ActorRefs.NoSender);
        return change.Completion.Task;
    }
}
