using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Job = ActorQueue.Tests.Review.LastRoundFixesReviewTests.Job;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 166) of <c>BatchProcessAsync</c> (<c>WorkQueue.Batch.cs</c>) and the durable router's batches
/// (<c>DurableRouterActor.Batches.cs</c>): a batch "completes when every item is finished and the queue has stopped", and
/// every item it read is processed, reported to its error handler with its reason, or queued — never two of them, never none.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class BatchStopReviewTests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch on a durable queue (capacity 2) whose second chunk the queue refuses while it keeps processing: one of its
    /// items cannot be serialised. Expected (the documented contract, kept): the batch reads no further item, the first
    /// chunk's items are processed, the refused ones go to the handler with the refusal, and the batch throws it once the
    /// queue has stopped. Failed before: the batch threw at once and left the queue processing ("Expected: Stopped, Actual: Processing").
    /// </summary>
    [Fact]
    public async Task A_batch_whose_chunk_a_processing_durable_queue_refuses_throws_once_the_queue_has_stopped()
    {
        await using var queue = new WorkQueue<Job>(new QueueConfig { QueueCapacity = 2, ConcurrencyLimit = 1, Durability = QueueDurability.InMemory },
            system: Sys, name: DurableStore.UniqueName("h166-refused-chunk"));
        var processed = new ConcurrentQueue<int>();
        var reported = new ConcurrentQueue<(Exception Error, Job Item)>();
        var read = 0;

        IEnumerable<Job> Items()
        {
            foreach (var number in new[] { 1, 2, Job.Unstorable, 4, 5, 6 })
            {
                Interlocked.Increment(ref read);
                yield return new Job(number);
            }
        }

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(Items(), (job, _) =>
        {
            processed.Enqueue(job.Number);
            return Task.CompletedTask;
        }, errorHandler: Collect(reported)).WaitAsync(Bound));
        var status = queue.Status;

        Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.Equal(QueueStatus.Stopped, status);
        Assert.Equal([1, 2], processed.Order());
        Assert.Equal([Job.Unstorable, 4], reported.Select(r => r.Item.Number));
        Assert.Equal(4, Volatile.Read(ref read));
        var metrics = queue.Metrics;
        Assert.Equal(2, metrics.Enqueued);
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }

    /// <summary>
    /// The same without an error handler: the batch throws one <see cref="AggregateException"/> (the refusal, then each
    /// refused item's failure) once the queue has stopped. Failed before as the test above ("Expected: Stopped, Actual: Processing").
    /// </summary>
    [Fact]
    public async Task A_handler_less_batch_whose_chunk_is_refused_throws_its_failures_once_the_queue_has_stopped()
    {
        await using var queue = new WorkQueue<Job>(new QueueConfig { QueueCapacity = 2, ConcurrencyLimit = 1, Durability = QueueDurability.InMemory },
            system: Sys, name: DurableStore.UniqueName("h166-refused-chunk-no-handler"));
        var processed = new ConcurrentQueue<int>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync([new Job(1), new Job(2), new Job(3), new Job(Job.Unstorable)], job =>
        {
            processed.Enqueue(job.Number);
            return Task.CompletedTask;
        }).WaitAsync(Bound));
        var status = queue.Status;

        var failures = Assert.IsType<AggregateException>(error);
        Assert.Equal(QueueStatus.Stopped, status);
        Assert.Equal(3, failures.InnerExceptions.Count); // the refusal, then the two items of the refused chunk
        Assert.All(failures.InnerExceptions, inner => Assert.IsAssignableFrom<ArgumentException>(inner));
        Assert.Equal([1, 2], processed.Order());
    }

    /// <summary>
    /// A durable batch (capacity 3, item 100 stored, no workers) whose first two items are in a write the journal holds,
    /// the third waiting for space, when a stop comes: the stop refuses the batch. Then the journal rejects the write.
    /// The batch's caller reads <see cref="BatchPut{T}.Admitted"/> when its put fails, as the count of its first items in
    /// the queue. Expected: those are in the queue (none: the write was rejected). Failed before: the stop answered the
    /// batch at once with Admitted 2, and the rejection took 1 and 2 back afterwards: "the caller read Admitted 2: [1, 2]
    /// counted as queued; in the queue: [100]" — neither queued nor reported (lost to a BatchProcessAsync cancelled there).
    /// </summary>
    [Fact]
    public async Task A_durable_batch_refused_by_a_stop_while_its_items_are_written_is_answered_after_the_write()
    {
        var system = WriteGatedJournal.System("h166-stop-write");
        try
        {
            var queue = new BoundedQueue<int>(3, WriteGatedJournal.Durability, DurableStore.UniqueName("h166-stop-write"), system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(100).WaitAsync(Bound));
            WriteGatedJournal.Close();
            WriteGatedJournal.RejectWrites = true;
            var batch = new BatchPut<int>([1, 2, 3]);
            var put = queue.PutBatchAsync(batch);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound); // 1 and 2 are being written; 3 waits for space
            var stop = queue.StopAsync(TimeSpan.Zero);
            await Poll.ValueAsync(() => queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance), status => status.State == QueueStatus.Stopping, Bound);

            // The stop has reached the router: on the old code the put had failed by then, and this is what its caller read.
            int? admittedWhenFailed = put.IsCompleted ? batch.Admitted : null;
            WriteGatedJournal.Open.TrySetResult(); // the held write is rejected
            await Assert.ThrowsAnyAsync<Exception>(() => put.WaitAsync(Bound));
            admittedWhenFailed ??= batch.Admitted;
            await stop.WaitAsync(Bound);
            WriteGatedJournal.RejectWrites = false;

            var queued = await queue.DrainAsync().WaitAsync(Bound);
            var counted = batch.Items.Take(admittedWhenFailed.Value).ToArray();
            Assert.True(queued.SequenceEqual([100, .. counted]),
                $"the caller read Admitted {admittedWhenFailed}: [{string.Join(", ", counted)}] counted as queued; in the queue: [{string.Join(", ", queued)}]");
            Assert.Equal(admittedWhenFailed, batch.Admitted);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            WriteGatedJournal.RejectWrites = false;
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    private static Func<Exception, TItem, Task> Collect<TItem>(ConcurrentQueue<(Exception Error, TItem Item)> reported) => (error, item) =>
    {
        reported.Enqueue((error, item));
        return Task.CompletedTask;
    };
}
