using System.Text.Json;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>How one item of a distributed queue ended.</summary>
/// <typeparam name="TResult">The workers' result type.</typeparam>
/// <param name="ItemId">The producer's id for the item.</param>
/// <param name="Succeeded">Whether the worker's handler returned (else it threw, or the item was lost too often).</param>
/// <param name="Result">The handler's result when it succeeded.</param>
/// <param name="Error">The exception's type and message when it failed.</param>
/// <param name="Node">The address of the node whose worker ran it.</param>
/// <param name="Deliveries">How many times it was handed to a worker (more than 1 after a worker node was lost).</param>
public sealed record ItemResult<TResult>(long ItemId, bool Succeeded, TResult? Result, string? Error, string Node, int Deliveries)
{
    /// <summary>
    /// Whether its producer withdrew it (<see cref="DistributedWorkQueue{TItem, TResult}.TryWithdrawAsync"/>) before a
    /// worker ran it, or before a worker lost with it could hand it to another: it did not run to an end, and will not.
    /// <see cref="Succeeded"/> is then <c>false</c>, <see cref="Error"/> says so, <see cref="Node"/> is the router's node
    /// and <see cref="Deliveries"/> counts the workers it was handed to before (0 when none).
    /// </summary>
    public bool Withdrawn { get; init; }
}

/// <summary>An item a distributed queue accepted: its id and the task for its result.</summary>
/// <typeparam name="TResult">The workers' result type.</typeparam>
/// <param name="ItemId">The producer's id for the item.</param>
/// <param name="Completion">Completes when a worker has processed the item, it is reported failed, or it is withdrawn.</param>
public sealed record DistributedItem<TResult>(long ItemId, Task<ItemResult<TResult>> Completion)
{
    /// <summary>The handle that put it; <c>null</c> for an item made by the caller.</summary>
    internal object? Owner { get; init; }

    /// <summary>The producer's put of the item (its result's source); <c>null</c> for an item made by the caller.</summary>
    internal PutItem? Put { get; init; }
}

/// <summary>A producer's view of a distributed queue: what happened to the items it put.</summary>
/// <param name="Accepted">Items the queue accepted.</param>
/// <param name="Rejected">Puts turned away by backpressure (no space within the timeout).</param>
/// <param name="Succeeded">Items a worker processed.</param>
/// <param name="Failed">Items whose handler threw, or that were lost with worker nodes too often.</param>
/// <param name="Redelivered">Items whose result came from a second or later delivery (a worker node was lost with them, or the router moved).</param>
/// <param name="Duplicates">Results that arrived for an item that already had one (at-least-once: processed twice).</param>
/// <param name="Outstanding">Items accepted or being put that have no result yet.</param>
public sealed record DistributedQueueMetrics(long Accepted, long Rejected, long Succeeded, long Failed, long Redelivered, long Duplicates, int Outstanding)
{
    /// <summary>
    /// Accepted items withdrawn by <see cref="DistributedWorkQueue{TItem, TResult}.TryWithdrawAsync"/> (their result says
    /// <see cref="ItemResult{TResult}.Withdrawn"/>); counted in neither <see cref="Succeeded"/> nor <see cref="Failed"/>.
    /// Also puts withdrawn before the queue accepted them (their <c>SubmitAsync</c> cancelled while they waited for
    /// space), which <see cref="DistributedQueueMetrics.Accepted"/> does not count: <c>Accepted</c> is therefore not the sum
    /// of <see cref="Succeeded"/>, <see cref="Failed"/>, <c>Withdrawn</c> and <see cref="Outstanding"/> once such a put was
    /// withdrawn.
    /// </summary>
    public long Withdrawn { get; init; }
}

/// <summary>A distributed queue router's counts.</summary>
/// <param name="Name">The queue's name.</param>
/// <param name="Queued">Items waiting for a worker (a durable router's items read back from its journal included while they wait for their producer to announce itself).</param>
/// <param name="InFlight">Items a worker is running.</param>
/// <param name="Workers">Workers the router knows, on all nodes.</param>
/// <param name="WaitingPuts">Puts waiting for space.</param>
/// <param name="Dispatched">Deliveries to workers since this router incarnation started.</param>
/// <param name="Redelivered">Items put back because their worker's node was lost.</param>
/// <param name="LostFailed">Items reported failed because they were lost with workers <c>max-deliveries</c> times.</param>
public sealed record DistributedQueueStatus(string Name, int Queued, int InFlight, int Workers, int WaitingPuts, long Dispatched, long Redelivered, long LostFailed)
{
    /// <summary>
    /// Items a durable router's journal held that could not be read back when this incarnation started: set aside
    /// (dead-lettered in the journal with the reason, logged as an error), not run, no longer unfinished.
    /// </summary>
    public long Unreadable { get; init; }

    /// <summary>
    /// Puts a durable router failed (with the reason, to their producer) because its journal refused to store their item;
    /// the router goes on serving.
    /// </summary>
    public long RejectedWrites { get; init; }

    /// <summary>
    /// Items and puts this router incarnation withdrew at their producer's request: taken out of the queue, not run again
    /// after their worker was lost, or dropped while they waited for space (never accepted).
    /// </summary>
    public long Withdrawn { get; init; }
}

/// <summary>The counters a producer agent keeps, readable from any thread.</summary>
internal sealed class ProducerCounts
{
    public long Accepted;
    public long Rejected;
    public long Succeeded;
    public long Failed;
    public long Redelivered;
    public long Duplicates;
    public long Withdrawn;
    public int Outstanding;

    public DistributedQueueMetrics Snapshot() => new(
        Interlocked.Read(ref Accepted), Interlocked.Read(ref Rejected), Interlocked.Read(ref Succeeded), Interlocked.Read(ref Failed),
        Interlocked.Read(ref Redelivered), Interlocked.Read(ref Duplicates), Volatile.Read(ref Outstanding))
    {
        Withdrawn = Interlocked.Read(ref Withdrawn),
    };
}

/// <summary>Turns items and results into System.Text.Json text and back.</summary>
internal sealed class ItemCodec<TItem, TResult>(JsonSerializerOptions? options)
{
    public string EncodeItem(TItem item) => JsonSerializer.Serialize(item, options);

    public TItem DecodeItem(string payload) => JsonSerializer.Deserialize<TItem>(payload, options)!;

    public string EncodeResult(TResult result) => JsonSerializer.Serialize(result, options);

    public TResult? DecodeResult(string? payload) => payload is null ? default : JsonSerializer.Deserialize<TResult>(payload, options);
}

/// <summary>A registration of workers for a distributed queue on one node.</summary>
public sealed class DistributedWorkers : IAsyncDisposable
{
    /// <summary>The registration's worker actors.</summary>
    private readonly IReadOnlyList<IActorRef> _workers;

    /// <summary>1 once disposal has begun.</summary>
    private int _disposed;

    internal DistributedWorkers(string queueName, IReadOnlyList<IActorRef> workers)
    {
        QueueName = queueName;
        _workers = workers;
    }

    /// <summary>The queue the workers pull from.</summary>
    public string QueueName { get; }

    /// <summary>How many workers this registration started.</summary>
    public int Count => _workers.Count;

    /// <summary>Stops the workers; an item one of them was running goes back to the queue and runs elsewhere.</summary>
    /// <returns>A task that completes when every worker has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Task.WhenAll(_workers.Select(worker => worker.GracefulStop(TimeSpan.FromSeconds(10)))).ConfigureAwait(false);
    }
}
