using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace ActorQueue.Actors;

/// <content>A batch's collector of the failures it throws at its end, when it runs without an error handler, and how it throws them.</content>
public sealed partial class WorkQueue<T>
{
    /// <summary>
    /// Throws what a batch ended with: nothing when it ran through and no item failed; else the failures collected
    /// (<paramref name="failed"/>, without an error handler) in one <see cref="AggregateException"/>, after the exception
    /// that ended the batch early if any: a cancellation's <see cref="OperationCanceledException"/> keeps its type and
    /// holds them as its inner <see cref="AggregateException"/>; the sequence's exception or the queue's (stopped or
    /// disposed under the batch) comes first among them.
    /// </summary>
    private void ThrowBatchOutcome(ExceptionDispatchInfo? sequenceFault, ExceptionDispatchInfo? batchFault, IReadOnlyList<Exception> failed,
                                   CancellationToken cancellationToken)
    {
        var fault = batchFault ?? sequenceFault;
        if (failed.Count == 0)
        {
            fault?.Throw();
            return;
        }

        var count = $"{failed.Count} items of the batch failed in queue {Queue.Name}";
        if (fault is null)
        {
            throw new AggregateException(count, failed);
        }

        var error = fault.SourceException;
        if (fault == sequenceFault)
        {
            throw new AggregateException($"The sequence of the batch on queue {Queue.Name} failed, and {failed.Count} of the items it gave before failed",
                [error, .. failed]);
        }

        if (error is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{error.Message}. {count} before the cancellation (the inner exception holds each, in the order they were reported)",
                new AggregateException(count, failed), cancellationToken);
        }

        throw new AggregateException($"The batch on queue {Queue.Name} ended early ({error.GetType().Name}: {error.Message}), and {failed.Count} of its items failed before",
            [error, .. failed]);
    }

    /// <summary>
    /// The workers' error handler of a batch run without one: collects the failures the batch throws at its end; once
    /// the batch has taken them (<see cref="End"/>), a failure (an item it left queued, discarded at disposal) is logged
    /// as an error instead. A failure collected as the batch ends is taken by exactly one of the two: a collector that
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
                telemetry.FailedAfterBatch(exception, item);
                return Task.CompletedTask;
            }

            _collected.Enqueue((exception, item));
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _ended) != 0)
            {
                // The end came as this one was collected: what the end has not taken is logged here.
                while (_collected.TryDequeue(out var late))
                {
                    telemetry.FailedAfterBatch(late.Error, late.Item);
                }
            }

            return Task.CompletedTask;
        }
    }
}
