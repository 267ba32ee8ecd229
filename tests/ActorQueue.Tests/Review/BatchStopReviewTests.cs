using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using ActorQueue.Tests.Queues;
using Job = ActorQueue.Tests.Review.LastRoundFixesReviewTests.Job;
using RecoveryGate = ActorQueue.Tests.Queues.Durable.ReplayGateJournal<ActorQueue.Tests.Review.BatchStopReviewTests>;

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
        await OnSystem(WriteGatedJournal.System("h166-stop-write"), async system =>
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
        }, () =>
        {
            WriteGatedJournal.RejectWrites = false;
            WriteGatedJournal.Open.TrySetResult();
        });
    }

    /// <summary>
    /// End to end: a batch on a durable queue (capacity 3, one worker that waits for its token) is cancelled while its
    /// second chunk's first item (3) is in a write the journal holds and 4 and 5 wait for space; the journal then rejects
    /// that write. Expected: every item read is either handed back by the drain or reported to the handler, once: [0, 1, 2]
    /// drained, [3, 4, 5] reported as cancelled (the rejection as inner exception), and the counters add up. Before the
    /// router's fix the stop answered the chunk with Admitted 1 before the write ended, so 3 was neither drained nor
    /// reported (this end-to-end run shows it when the caller reads Admitted before the rejection reaches the router;
    /// the test above pins it deterministically).
    /// </summary>
    [Fact]
    public async Task A_cancelled_durable_batch_whose_held_write_is_then_rejected_accounts_for_every_item_once()
    {
        await OnSystem(WriteGatedJournal.System("h166-cancel-reject"), async system =>
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 3, ConcurrencyLimit = 1, WorkerBatch = 1, Durability = WriteGatedJournal.Durability },
                system: system, name: DurableStore.UniqueName("h166-cancel-reject"));
            using var cancel = new CancellationTokenSource();
            var reported = new ConcurrentQueue<(Exception Error, int Item)>();
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var heldWrite = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);

            IEnumerable<int> Items()
            {
                for (var i = 0; i < 6; i++)
                {
                    if (i == 3)
                    {
                        // The first chunk is written (its put answered): the next write is held, and rejected once opened.
                        var arrived = WriteGatedJournal.HoldNextWrite();
                        WriteGatedJournal.RejectWrites = true;
                        heldWrite.TrySetResult(arrived);
                    }

                    yield return i;
                }
            }

            var batch = queue.BatchProcessAsync(Items(), (_, ct) =>
            {
                running.TrySetResult();
                return Task.Delay(Timeout.Infinite, ct);
            }, errorHandler: Collect(reported), cancellationToken: cancel.Token);
            // 3 is being written (the worker took 0); 4 and 5 wait. The arrival is the one the sequence's close made: the
            // field, read before it, was completed by earlier writes, and a cancellation before 3 was read hands back nothing.
            await (await heldWrite.Task.WaitAsync(Bound)).WaitAsync(Bound);
            await running.Task.WaitAsync(Bound);
            cancel.Cancel();
            await Poll.ValueAsync(() => queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance), status => status.State != QueueStatus.Processing, Bound);
            WriteGatedJournal.Open.TrySetResult();

            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
            WriteGatedJournal.RejectWrites = false;
            var drained = await queue.DrainAsync().WaitAsync(Bound);

            Assert.IsAssignableFrom<OperationCanceledException>(error);
            Assert.Equal([0, 1, 2], drained);
            Assert.Equal([3, 4, 5], reported.Select(r => r.Item).Order());
            Assert.All(reported, r => Assert.IsType<QueueStorageException>(Assert.IsAssignableFrom<OperationCanceledException>(r.Error).InnerException));
            var metrics = queue.Metrics;
            Assert.Equal(3, metrics.Enqueued);
            Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }, () =>
        {
            WriteGatedJournal.RejectWrites = false;
            WriteGatedJournal.Open.TrySetResult();
        });
    }

    /// <summary>
    /// A batch called while its durable queue recovers from a journal that then fails the replay. Expected: the batch
    /// fails with the recovery's <see cref="QueueStorageException"/>, reads no item (none can be queued), and the queue's
    /// disposal completes. Passes (no defect): its workers' start, kept while recovering, hears the recovery's error.
    /// </summary>
    [Fact]
    public async Task A_batch_on_a_durable_queue_whose_recovery_fails_reads_nothing_and_says_why()
    {
        await OnSystem(RecoveryGate.System("h166-recovery-fails"), async system =>
        {
            var name = DurableStore.UniqueName("h166-recovery-fails");
            await using (var first = new BoundedQueue<int>(4, RecoveryGate.Durability, name, system: system))
            {
                // A journal with nothing for the name is not asked to replay: one stored item makes it.
                await first.StartAsync().WaitAsync(Bound);
                Assert.True(await first.PutAsync(1).WaitAsync(Bound));
            }

            RecoveryGate.Close();
            RecoveryGate.FailReplay = true;
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, Durability = RecoveryGate.Durability }, system: system, name: name);
            await RecoveryGate.ReplayArrived.Task.WaitAsync(Bound);
            var sequence = new CountedSequence(10);

            var batch = queue.BatchProcessAsync(sequence.Items(), _ => Task.CompletedTask);
            RecoveryGate.Open.TrySetResult();

            await Assert.ThrowsAsync<QueueStorageException>(() => batch.WaitAsync(Bound));
            Assert.Equal(0, sequence.Read);
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.BatchProcessAsync(sequence.Items(), _ => Task.CompletedTask).WaitAsync(Bound));
            Assert.Equal(0, sequence.Read);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }, () =>
        {
            RecoveryGate.FailReplay = false;
            RecoveryGate.Open.TrySetResult();
        });
    }

    /// <summary>
    /// A batch's cancellation raced against the queue's disposal, or against a stop, released together by a barrier on two
    /// dedicated threads while the batch's second chunk waits for space (capacity 4, one worker holding an item until its
    /// token is cancelled), 20 rounds each. Expected each round: the batch ends, and every item it read is, exactly once,
    /// reported to its handler (refused, cancelled, or discarded by the disposal) or handed back by a drain after the stop.
    /// Passes (no defect found).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_cancellation_racing_a_disposal_or_a_stop_accounts_for_every_item_once(bool dispose)
    {
        for (var round = 0; round < 20; round++)
        {
            var (sequence, reported) = (new CountedSequence(12), new ConcurrentQueue<(Exception Error, int Item)>());
            using var cancel = new CancellationTokenSource();
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: $"h166-race-{dispose}-{round}");
            var batch = queue.BatchProcessAsync(sequence.Items(), UntilCancelled, 1, Collect(reported), cancel.Token);
            // The first chunk is in (the worker holds 0), and the second waits for space with one of its items admitted.
            await Poll.UntilAsync(() => sequence.Read == 8 && queue.Metrics.Enqueued == 5 && queue.IsFull, Bound, () => $"round {round}: read {sequence.Read}, enqueued {queue.Metrics.Enqueued}");
            using var barrier = new Barrier(2);
            var racers = new[]
            {
                new Thread(() =>
                {
                    barrier.SignalAndWait(Bound);
                    cancel.Cancel();
                }) { IsBackground = true },
                new Thread(() =>
                {
                    barrier.SignalAndWait(Bound);
                    if (dispose)
                    {
                        queue.Dispose();
                    }
                    else
                    {
                        _ = queue.StopAsync(TimeSpan.Zero);
                    }
                }) { IsBackground = true },
            };
            Array.ForEach(racers, racer => racer.Start());
            Assert.True(racers.All(racer => racer.Join(Bound)), "a racer did not return");
            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
            Assert.NotNull(error);
            IReadOnlyList<int> drained = [];
            if (!dispose)
            {
                await queue.StopAsync(TimeSpan.Zero).WaitAsync(Bound);
                drained = await queue.DrainAsync().WaitAsync(Bound);
            }
            await queue.DisposeAsync().AsTask().WaitAsync(Bound); // completes once the discarded items are reported
            var accounted = reported.Select(r => r.Item).Concat(drained).Order().ToArray();
            Assert.True(accounted.SequenceEqual(Enumerable.Range(0, sequence.Read)),
                $"round {round}: read {sequence.Read}; reported [{string.Join(", ", reported.Select(r => r.Item))}], drained [{string.Join(", ", drained)}] ({error!.GetType().Name}: {error.Message})");
        }
    }

    /// <summary>
    /// A batch's queue is disposed (its stop timeout 1 h, so the disposal's grace period would let the work in hand run
    /// that long), then the batch is cancelled (a host disposing, then cancelling). The documentation: the worker's token
    /// "is cancelled when cancellationToken is", and a cancelled batch stops the queue at once. Expected: the worker's
    /// token is cancelled, the batch throws the cancellation, and the disposal completes, each every item reported once.
    /// Failed before: the batch's stop at once was refused as the queue was disposed (ObjectDisposedException, swallowed),
    /// so the worker ran on for the disposal's whole grace period ("the worker's token was not cancelled"). In the race
    /// test above, every round where the disposal came first took the 5 s stop timeout to dispose.
    /// </summary>
    [Fact]
    public async Task A_batch_cancelled_after_its_queue_was_disposed_cancels_its_workers_at_once()
    {
        await OnSystem(ActorSystem.Create("h166-dispose-then-cancel", Akka.Configuration.ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1h")
            .WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig)), async system =>
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: system, name: "h166-dispose-then-cancel");
            using var cancel = new CancellationTokenSource();
            var reported = new ConcurrentQueue<(Exception Error, int Item)>();
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var tokenCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var batch = queue.BatchProcessAsync([1, 2, 3], (_, ct) =>
            {
                ct.Register(() => tokenCancelled.TrySetResult());
                running.TrySetResult();
                return Task.Delay(Timeout.Infinite, ct);
            }, errorHandler: Collect(reported), cancellationToken: cancel.Token);
            await running.Task.WaitAsync(Bound);
            var disposal = queue.DisposeAsync().AsTask();
            await Poll.ValueAsync(() => queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance), status => status.State == QueueStatus.Stopping, Bound);

            cancel.Cancel();

            Assert.True(await Poll.CompletesWithin(tokenCancelled.Task, Bound), "the worker's token was not cancelled by the batch's cancellation (the disposal's grace period, 1 h, went on)");
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
            await disposal.WaitAsync(Bound);
            Assert.Equal([1, 2, 3], reported.Select(r => r.Item).Order());
        }, static () => { });
    }

    /// <summary>Runs <paramref name="test"/> on <paramref name="system"/>, then <paramref name="release"/> (opens the test journal's gates) and terminates the system.</summary>
    private static async Task OnSystem(ActorSystem system, Func<ActorSystem, Task> test, Action release)
    {
        try
        {
            await test(system);
        }
        finally
        {
            release();
            await system.Terminate();
        }
    }

    /// <summary>A worker that holds its item until its token is cancelled.</summary>
    private static Task UntilCancelled(int item, CancellationToken token) => Task.Delay(Timeout.Infinite, token);

    private static Func<Exception, TItem, Task> Collect<TItem>(ConcurrentQueue<(Exception Error, TItem Item)> reported) => (error, item) =>
    {
        reported.Enqueue((error, item));
        return Task.CompletedTask;
    };
}
