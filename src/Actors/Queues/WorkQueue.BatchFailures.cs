using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace ActorQueue.Actors;

/// <content>A batch's collector of the failures it throws at its end, when it runs without an error handler, and how it throws them.</content>
public sealed partial class WorkQueue<T>
{
    /// <summary>
    /// Throws what a batch ended with, dropping nothing: nothing when it ran through and no item failed; else, in this
    /// order, the exception that ended it early (<paramref name="batchFault"/>: the queue's, stopped, disposed or
    /// refusing a chunk, or a cancellation's), the sequence's own (<paramref name="sequenceFaults"/>: its
    /// <c>GetEnumerator</c> or <c>MoveNext</c>, then its <c>Dispose</c>) and the items' failures collected without an error
    /// handler (<paramref name="failed"/>, as they were reported). One of them alone is thrown as it is; several, in one
    /// <see cref="AggregateException"/> — except that a cancellation's <see cref="OperationCanceledException"/> keeps its
    /// type and holds the others as its inner <see cref="AggregateException"/>, after what the cancellation interrupted
    /// (its own inner exception, unless that is a bare cancellation).
    /// </summary>
    private void ThrowBatchOutcome(IReadOnlyList<ExceptionDispatchInfo> sequenceFaults, ExceptionDispatchInfo? batchFault, IReadOnlyList<Exception> failed,
                                   CancellationToken cancellationToken)
    {
        var count = $"{failed.Count} items of the batch failed in queue {Queue.Name}";
        if (batchFault is null && sequenceFaults.Count == 0)
        {
            if (failed.Count > 0)
            {
                throw new AggregateException(count, failed);
            }

            return;
        }

        var first = batchFault ?? sequenceFaults[0];
        var sequenceAlso = sequenceFaults.Where(fault => fault != first).Select(fault => fault.SourceException).ToList();
        if (sequenceAlso.Count == 0 && failed.Count == 0)
        {
            first.Throw();
        }

        var error = first.SourceException;
        var also = sequenceAlso.Count == 0 ? "" : $", and its sequence failed too ({string.Join("; ", sequenceAlso.Select(e => $"{e.GetType().Name}: {e.Message}"))})";
        if (batchFault is not null && error is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            // What the cancellation ended the batch with (a put or join the stop refused, a journal's failure, a disposal)
            // comes first, as the exception that ended a batch does in the aggregate below. Before, the new inner
            // aggregate replaced the cancellation's inner exception, so it was dropped once an item had failed (round 44).
            Exception[] cause = error.InnerException is { } inner && !IsBareCancellation(inner) ? [inner] : [];
            List<string> holds = [];
            if (cause.Length > 0)
            {
                holds.Add($"what the cancellation interrupted ({cause[0].GetType().Name})");
            }

            if (sequenceAlso.Count > 0)
            {
                holds.Add("the sequence's exceptions");
            }

            if (failed.Count > 0)
            {
                holds.Add("each failure, in the order they were reported");
            }

            var message = $"{error.Message}{also}{(failed.Count == 0 ? "" : $". {count} before the cancellation")} (the inner exception holds {string.Join(", then ", holds)})";
            throw new OperationCanceledException(message, new AggregateException(failed.Count == 0 ? "The sequence failed" : count, [.. cause, .. sequenceAlso, .. failed]),
                cancellationToken);
        }

        var items = failed.Count == 0 ? "" : $", and {failed.Count} of {(batchFault is null ? "the items it gave before" : "its items")} failed";
        throw new AggregateException(batchFault is null
                ? $"The sequence of the batch on queue {Queue.Name} failed ({error.GetType().Name}: {error.Message}){also}{items}"
                : $"The batch on queue {Queue.Name} ended early ({error.GetType().Name}: {error.Message}){also}{items}{(failed.Count == 0 ? "" : " before")}",
            [error, .. sequenceAlso, .. failed]);
    }

    /// <summary>
    /// Whether <paramref name="error"/>, the exception a cancellation ended the batch with, is the cancellation alone (an
    /// <see cref="OperationCanceledException"/> with nothing inside): one that tells more (a refusal, a failure) is kept.
    /// </summary>
    private static bool IsBareCancellation(Exception error) => error is OperationCanceledException { InnerException: null };

    /// <summary>
    /// The workers' error handler of a batch run without one: collects the failures the batch throws at its end (items'
    /// last tries only: its workers are started with <see cref="WorkerSpec{T}.LastTryOnly"/>); once
    /// the batch has taken them (<see cref="End"/>), a failure is logged as an error instead: an item it left queued,
    /// discarded at disposal, or one it never queued that the queue's workers, still the batch's, hear of (an item put
    /// later, a durable queue's item it cannot read back found by a drain or a get, which the queue has logged already, naming its id, and is not logged again). A failure collected as the batch ends is taken by exactly one of the two: a collector that
    /// finds the end has come takes back what the end may not have seen, and logs it.
    /// </summary>
    private sealed class BatchFailures(QueueTelemetry telemetry)
    {
        private readonly ConcurrentQueue<(Exception Error, T Item)> _collected = new();

        private int _ended;

        /// <summary>Ends the collection: the failures collected so far, in the order they were reported.</summary>
        public IReadOnlyList<Exception> End()
        {
            // A full fence before the reads, as Collect's enqueue is before its read of the end: either a failure is
            // read here, or its collector sees the end (or both, and then one dequeue takes it).
            Interlocked.Exchange(ref _ended, 1);
            var taken = new List<Exception>(_collected.Count);
            while (_collected.TryDequeue(out var failure))
            {
                taken.Add(failure.Error);
            }

            return taken;
        }

        public Task Collect(Exception exception, T item)
        {
            if (Volatile.Read(ref _ended) != 0)
            {
                LogLater(exception, item);
                return Task.CompletedTask;
            }

            _collected.Enqueue((exception, item));
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _ended) != 0)
            {
                // The end came as this one was collected: what the end has not taken is logged here.
                while (_collected.TryDequeue(out var late))
                {
                    LogLater(late.Error, late.Item);
                }
            }

            return Task.CompletedTask;
        }

        /// <summary>
        /// Logs a failure the batch no longer takes, unless the queue logged it already naming the item by its id (an item
        /// it cannot read back, whose item here is the default). Before, such an item was logged twice: by the queue, then
        /// here as "(null)" (round 46).
        /// </summary>
        private void LogLater(Exception exception, T item)
        {
            if (exception is not QueueStorageException { LoggedByQueue: true })
            {
                telemetry.FailedAfterBatch(exception, item);
            }
        }
    }
}
