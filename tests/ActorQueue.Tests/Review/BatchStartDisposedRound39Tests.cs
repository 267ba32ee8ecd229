using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 second reading (helper 187): a queue disposed between a batch's own worker start and its queue start
/// (held at <see cref="BoundedQueue{T}.BatchWorkersStarted"/>).
/// </summary>
public sealed class BatchStartDisposedRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// Expected: the batch throws <see cref="ObjectDisposedException"/> — right, as it read nothing (its sequence never
    /// enumerated, so no item was accepted and none dropped) — but only once the disposal has stopped the queue (its
    /// workers are the batch's by then), as for any disposal under a batch; the gate is left free. Failed before:
    /// "the batch ended before the disposal had stopped the queue" (thrown at once from the queue start's check). It reads
    /// the queue's stop, not the work queue's whole disposal, which disposes the work queue's own limiter after it (read so
    /// first, the assertion failed one run in three: lead's merge of h187).
    /// </summary>
    [Fact]
    public async Task A_disposal_between_the_batch_s_worker_start_and_queue_start_reads_nothing_and_waits_for_the_disposal()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h187-start-disposed");
        var sequence = new ScriptedSequence(3);
        Task? disposal = null;
        Task? queueStopped = null;
        queue.Queue.BatchWorkersStarted = () =>
        {
            queue.Queue.BatchWorkersStarted = null;
            disposal = queue.DisposeAsync().AsTask();
            // The queue's own stop (the work queue's disposal goes on to dispose its limiter after it): what the batch waits for.
            queueStopped = queue.Queue.DisposeAsync().AsTask();
        };

        var batch = queue.BatchProcessAsync(sequence, _ => Task.CompletedTask);
        var disposedAtEnd = batch.ContinueWith(_ => queueStopped?.IsCompleted, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => batch.WaitAsync(Bound));
        Assert.True(await disposedAtEnd.WaitAsync(Bound), "the batch ended before the disposal had stopped the queue");
        Assert.Equal(0, sequence.Disposed); // never enumerated
        Assert.False(queue.Queue.WorkerGate.BatchOwns);
        await disposal!.WaitAsync(Bound);
    }
}
