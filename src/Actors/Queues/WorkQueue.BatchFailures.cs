using System.Collections.Concurrent;

namespace ActorQueue.Actors;

/// <content>A batch's collector of the failures it throws at its end, when it runs without an error handler.</content>
public sealed partial class WorkQueue<T>
{
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
