using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the local queues by helper 68.</summary>
[Collection(WriteGatedJournal.Collection)]
public class LocalQueueReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>An actor system of the test's own (to terminate it), whose queues stop-time out after 1 s.</summary>
    private static ActorSystem OwnSystem(string name) =>
        ActorSystem.Create(name, ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueueRuntime.DefaultConfig));

    private static Func<Exception, int, Task> Collect(ConcurrentQueue<(Exception Error, int Item)> reported) => (error, item) =>
    {
        reported.Enqueue((error, item));
        return Task.CompletedTask;
    };

    /// <summary>
    /// Failed before: the four items of the run never started were neither processed, reported nor counted (InFlight 5).
    /// The actor system terminates while a queue is processing and one worker holds a run of five items (the
    /// first in hand, four not started). Akka stops the worker first (its PostStop cancels the run's token), then the
    /// router, whose PostStop (QueueRouterActor.cs PostStop → DiscardQueued) reports only the items still in the buffer
    /// (<c>_ledger.Size</c>): the run's items are with a worker that is gone, its ItemsFinished goes to dead letters, and
    /// nobody reports them. Four items never started are neither processed, reported nor counted (InFlight stays 5 for
    /// ever). Expected: the items of the runs the workers still held (and the cancelled item in hand) are reported to the
    /// error handler as discarded and counted, as the queued ones are.
    /// </summary>
    [Fact]
    public async Task A_system_terminating_under_a_worker_run_reports_the_run_items_it_never_started()
    {
        var system = OwnSystem("r68-terminating-run");
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var processed = new ConcurrentQueue<int>();
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = new BoundedQueue<int>(maxSize: 10, system: system, name: "run");
        try
        {
            await queue.StartAsync();
            for (var item = 1; item <= 5; item++)
            {
                Assert.True(await queue.PutAsync(item));
            }

            await queue.StartWorkersAsync(async (item, ct) =>
            {
                if (item == 1)
                {
                    inFirst.TrySetResult();
                    await Task.Delay(Timeout.Infinite, ct);
                }

                processed.Enqueue(item);
            }, numWorkers: 1, errorHandler: Collect(reported));
            await inFirst.Task.WaitAsync(Bound);
            Assert.Equal(0, queue.Size); // the one worker took all five as one run

            await system.Terminate().WaitAsync(Bound);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            await Poll.UntilAsync(() => reported.Count + processed.Count >= 4, TimeSpan.FromSeconds(5),
                () => $"items 2..5 are processed or reported; processed [{string.Join(",", processed)}], reported [{string.Join(",", reported.Select(r => r.Item))}], metrics {queue.Metrics}");
            var metrics = queue.Metrics;
            Assert.Equal((5L, 0L, 0L), (metrics.Discarded, metrics.InFlight, metrics.Processed)); // the cancelled item in hand is discarded too
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: DisposeAsync never completed while the error handler of a failed item had not returned.
    /// A worker's item fails and the error handler (which is given no token) never completes; the queue is then
    /// disposed. The disposal's stop waits for the worker, the stop timeout only cancels the run's token, which the
    /// worker task, inside <c>QueueTelemetry.ReportFailureAsync</c> (WorkerTask.ProcessAsync's catch), never looks at:
    /// the worker never reports, the router never leaves Stopping, and DisposeAsync never completes. README promises an
    /// error handler "that never returns cannot hold a disposal or a host's shutdown" (said of discarded items; the
    /// handler is the same). Expected: the disposal completes after the stop timeout (1 s here), the report going on.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_is_not_held_for_ever_by_an_error_handler_that_never_completes_for_a_failed_item()
    {
        var system = OwnSystem("r68-hanging-handler");
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inHandler = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var queue = new BoundedQueue<int>(maxSize: 10, system: system, name: "hanging");
            await queue.StartAsync();
            await queue.StartWorkersAsync((_, _) => throw new InvalidOperationException("boom"), numWorkers: 1, errorHandler: (_, _) =>
            {
                inHandler.TrySetResult();
                return never.Task;
            });
            Assert.True(await queue.PutAsync(1));
            await inHandler.Task.WaitAsync(Bound);

            var dispose = queue.DisposeAsync().AsTask();
            var finished = await Poll.CompletesWithin(dispose, Bound);

            Assert.True(finished, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s): the error handler holds it");
        }
        finally
        {
            never.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>An item System.Text.Json writes but cannot read back: its one constructor's parameter matches no property.</summary>
    public sealed class WriteOnlyItem(int value)
    {
        public int Number { get; } = value;
    }

    /// <summary>
    /// A durable queue accepts an item whose JSON cannot be read back (it serialises; its constructor's parameter binds
    /// to no property — or its type changed since it was written). After a restart the item is replayed as bytes and
    /// decoded when it is handed out. Failed before: the decode threw on the router's thread, the router restarted idle,
    /// and the item was never run, reported or dead-lettered, nor anything after it. Now it becomes a dead letter at
    /// once, with the reason (no try can run it; the error handler, which takes an item, is not called — the router logs
    /// it), counted as an error, and the queue goes on: a later item runs. A drain hands back only what it can read.
    /// </summary>
    [Fact]
    public async Task A_durable_item_that_cannot_be_read_back_after_a_restart_is_reported_not_lost()
    {
        using var store = new ActorQueue.Tests.Queues.Durable.DurableStore(Sys);
        var name = ActorQueue.Tests.Queues.Durable.DurableStore.UniqueName("r68-unreadable");
        var durability = store.Durability(retry: new RetryPolicy { MaxAttempts = 1 });
        await PutUnreadableAsync(durability, name);

        var ran = new ConcurrentQueue<int>();
        var reported = new ConcurrentQueue<Exception>();
        await using var second = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await second.StartAsync().WaitAsync(Bound);
        Assert.Equal(1, second.Size);
        await second.StartWorkersAsync((item, _) =>
        {
            ran.Enqueue(item.Number);
            return Task.CompletedTask;
        }, numWorkers: 1, errorHandler: (error, _) =>
        {
            reported.Enqueue(error);
            return Task.CompletedTask;
        }).WaitAsync(Bound);

        var dead = await Poll.ValueAsync(() => second.DeadLettersAsync(), letters => letters.Count == 1, Bound);
        Assert.Equal(1, dead[0].Attempts); // counted as its one try, though no worker ran it
        Assert.Contains("cannot be read back", dead[0].LastError);
        Assert.Null(dead[0].Item);
        Assert.Equal(QueueStatus.Processing, second.Status);
        Assert.Equal(1, second.Metrics.Errors);

        // The queue goes on: a new item (written and held in memory) runs.
        Assert.True(await second.PutAsync(new WriteOnlyItem(8)));
        await Poll.UntilAsync(() => ran.Contains(8), Bound, "a later item ran");
        Assert.Empty(reported);
    }

    /// <summary>
    /// Two drains in a row over an unreadable item (re-read of b35aeaa): the first dead-letters it and answers at once
    /// (nothing to hand back), while its dead letter is still being written. Failed before: the item stayed ready until
    /// that write ended, so the second drain dead-lettered it again — counted twice, an invariant broken, and both
    /// records in the journal. Now it leaves the ready items at once.
    /// </summary>
    [Fact]
    public async Task An_unreadable_item_drained_twice_is_dead_lettered_once()
    {
        using var store = new ActorQueue.Tests.Queues.Durable.DurableStore(Sys);
        var name = ActorQueue.Tests.Queues.Durable.DurableStore.UniqueName("r68-unreadable-drain");
        var durability = store.Durability(retry: new RetryPolicy { MaxAttempts = 1 });
        await PutUnreadableAsync(durability, name);

        await using var second = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await second.StartAsync().WaitAsync(Bound);
        await second.StopAsync().WaitAsync(Bound);
        var drains = new[] { second.DrainAsync(), second.DrainAsync() };
        Assert.All(await Task.WhenAll(drains).WaitAsync(Bound), Assert.Empty);

        Assert.Single(await second.DeadLettersAsync().WaitAsync(Bound));
        Assert.Equal((1L, 1L, 0), (second.Metrics.Errors, second.Metrics.Processed, second.Size));
    }

    /// <summary>Writes one <see cref="WriteOnlyItem"/> to the durable queue <paramref name="name"/> and closes it: opened again, it holds an item it cannot read.</summary>
    private async Task PutUnreadableAsync(QueueDurability durability, string name)
    {
        await using var first = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await first.StartAsync();
        Assert.True(await first.PutAsync(new WriteOnlyItem(7)));
        await first.StopAsync();
    }


    /// <summary>
    /// A durable put is cancelled while its item's write is at the journal: its task ends cancelled ("a cancelled put
    /// adds nothing"). Failed before: when the write ended, the item went into the book, the answer found the put
    /// withdrawn and only queued its removal for the next write, and the hand-out after the write ran it. Now the
    /// withdrawn item leaves the book at once and its removal is written next.
    /// </summary>
    [Fact]
    public async Task A_durable_put_cancelled_while_its_write_is_at_the_journal_never_runs_its_item()
    {
        var system = WriteGatedJournal.System("r68-withdrawn");
        try
        {
            await using var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "withdrawn", system: system);
            var ran = new ConcurrentQueue<int>();
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync((item, _) =>
            {
                ran.Enqueue(item);
                return Task.CompletedTask;
            }, numWorkers: 1).WaitAsync(Bound);

            WriteGatedJournal.Close();
            using var cancel = new CancellationTokenSource();
            var put = queue.PutAsync(1, timeout: null, cancellationToken: cancel.Token);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound); // the item's ItemAccepted is at the journal
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => put.WaitAsync(Bound));
            WriteGatedJournal.Open.SetResult();

            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
            await Poll.UntilAsync(() => ran.Contains(2), Bound, "item 2 ran");
            Assert.Equal([2], ran);
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// Held up: a worker function that returns a task cancelled by a token of its own (not the worker's), one that
    /// returns null, and one that throws before returning a task each fail their item: reported to the error handler
    /// with the reason, counted as processed with an error, never put back as if a stop had cancelled it; JoinAsync
    /// completes and the counters keep their equation.
    /// </summary>
    [Fact]
    public async Task Faulted_cancelled_and_null_worker_tasks_are_reported_and_counted_as_errors()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 10, system: Sys, name: "faulty");
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        await queue.StartAsync();
        await queue.StartWorkersAsync((item, _) => item switch
        {
            1 => Task.FromCanceled(new CancellationToken(canceled: true)),
            2 => null!,
            3 => throw new InvalidOperationException("sync"),
            _ => Task.CompletedTask,
        }, numWorkers: 1, errorHandler: Collect(reported));
        for (var item = 1; item <= 4; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        await queue.JoinAsync().WaitAsync(Bound);

        Assert.Equal([1, 2, 3], reported.Select(r => r.Item).Order());
        Assert.IsAssignableFrom<OperationCanceledException>(reported.Single(r => r.Item == 1).Error);
        var metrics = queue.Metrics;
        Assert.Equal((4, 4, 3), (metrics.Enqueued, metrics.Processed, metrics.Errors));
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }

    /// <summary>
    /// Held up: a put waiting for space whose token is cancelled at the instant a get frees the space (the router
    /// accepts it as the caller withdraws it). Over many rounds, a put that returned true has its item got, one that was
    /// cancelled never does, and Enqueued counts exactly the puts that returned true.
    /// </summary>
    [Fact]
    public async Task A_put_cancelled_as_space_frees_is_either_accepted_and_delivered_or_adds_nothing()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 1, timeout: Timeout.InfiniteTimeSpan, system: Sys, name: "cancel-race");
        await queue.StartAsync();
        var accepted = 0;
        var jitter = new Random(68);
        for (var round = 0; round < 200; round++)
        {
            var head = 2 * round;
            Assert.True(await queue.PutAsync(head).WaitAsync(Bound));
            accepted++;
            using var cancel = new CancellationTokenSource();
            var waiting = queue.PutAsync(head + 1, cancellationToken: cancel.Token);
            var get = queue.GetAsync(); // told to the router now; the cancellation below races its hand-out and the admission after it
            Thread.SpinWait(jitter.Next(20_000));
            cancel.Cancel();
            Assert.Equal(head, await get.WaitAsync(Bound));
            queue.TaskDone();
            bool? putResult;
            try
            {
                putResult = await waiting.WaitAsync(Bound);
            }
            catch (OperationCanceledException)
            {
                putResult = null;
            }

            if (putResult == true)
            {
                accepted++;
                Assert.Equal(head + 1, await queue.GetAsync().WaitAsync(Bound));
                queue.TaskDone();
            }

            await Poll.UntilAsync(() => queue.Metrics.Enqueued == accepted && queue.Metrics.InFlight == 0 && queue.Size == 0, Bound,
                () => $"round {round}: the counts agree with {accepted} accepted puts ({queue.Metrics}, size {queue.Size})");
        }

        var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance, Bound);
        Assert.Equal((accepted, accepted, 0), (status.Metrics.Enqueued, status.Metrics.Processed, status.Size));
    }

    /// <summary>
    /// Held up: after the actor system terminates, every call on a queue it ran completes promptly (an answer or an
    /// exception), none waits for a router that is gone; DisposeAsync too.
    /// </summary>
    [Fact]
    public async Task Every_call_on_a_queue_whose_actor_system_terminated_completes()
    {
        var system = OwnSystem("r68-gone");
        var queue = new BoundedQueue<int>(maxSize: 2, system: system, name: "gone");
        await queue.StartAsync();
        await system.Terminate().WaitAsync(Bound);

        var calls = new (string Name, Func<Task> Call)[]
        {
            ("PutAsync", () => queue.PutAsync(1)),
            ("PutAsync(timeout)", () => queue.PutAsync(2, Timeout.InfiniteTimeSpan)),
            ("GetAsync", () => queue.GetAsync()),
            ("JoinAsync", () => queue.JoinAsync()),
            ("StartAsync", () => queue.StartAsync()),
            ("StopAsync", () => queue.StopAsync()),
            ("DrainAsync", () => queue.DrainAsync()),
            ("StartWorkersAsync", () => queue.StartWorkersAsync(_ => Task.CompletedTask, 1)),
            ("DisposeAsync", () => queue.DisposeAsync().AsTask()),
        };
        foreach (var (name, call) in calls)
        {
            var task = Task.Run(call);
            var done = await Poll.CompletesWithin(task, Bound);
            Assert.True(done, $"{name} on a queue whose actor system terminated had not completed after {Bound.TotalSeconds} s");
        }
    }

    /// <summary>
    /// The journal rejects the write of a drain's removals (OnPersistRejected). Failed before: Rejected refused only the
    /// ItemAccepted events of the record and applied and answered every other as if written, so DrainAsync handed the
    /// items back while the journal kept them, and the queue opened again ran them. Now an event whose caller must know
    /// it was stored (a drain's, a dead-letter change's) is not applied, and the caller gets the QueueStorageException.
    /// </summary>
    [Fact]
    public async Task A_durable_drain_whose_write_is_rejected_does_not_hand_back_items_that_stay_journaled()
    {
        var system = WriteGatedJournal.System("r68-rejected-drain");
        try
        {
            IReadOnlyList<int>? drained = null;
            await using (var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "rejected-drain", system: system))
            {
                await queue.StartAsync().WaitAsync(Bound);
                for (var item = 1; item <= 3; item++)
                {
                    Assert.True(await queue.PutAsync(item).WaitAsync(Bound));
                }

                await queue.StopAsync().WaitAsync(Bound);
                WriteGatedJournal.RejectWrites = true;
                try
                {
                    drained = await queue.DrainAsync().WaitAsync(Bound);
                }
                catch (QueueStorageException)
                {
                    // refused: the items stay queued, as they stay in the journal
                }
                finally
                {
                    WriteGatedJournal.RejectWrites = false;
                }

                Assert.Null(drained);
                Assert.Equal(3, queue.Size);
            }

            await using var again = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "rejected-drain", system: system);
            var left = await again.DrainAsync().WaitAsync(Bound);
            Assert.Equal([1, 2, 3], left);
        }
        finally
        {
            WriteGatedJournal.RejectWrites = false;
            await system.Terminate();
        }
    }

    /// <summary>A requeue of dead letters the journal rejects changes nothing: the caller gets the error, the dead letter stays, and a later requeue works.</summary>
    [Fact]
    public async Task A_durable_requeue_whose_write_is_rejected_leaves_the_dead_letter()
    {
        var system = WriteGatedJournal.System("r68-rejected-requeue");
        try
        {
            var durability = new QueueDurability
            {
                JournalPluginId = WriteGatedJournal.Durability.JournalPluginId, SnapshotPluginId = WriteGatedJournal.Durability.SnapshotPluginId, Retry = new RetryPolicy { MaxAttempts = 1 },
            };
            await using var queue = new BoundedQueue<int>(10, durability, "rejected-requeue", system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await queue.StartWorkersAsync((_, _) => throw new InvalidOperationException("boom"), numWorkers: 1).WaitAsync(Bound);
            await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Bound);
            await queue.StopAsync().WaitAsync(Bound);

            WriteGatedJournal.RejectWrites = true;
            try
            {
                await Assert.ThrowsAsync<QueueStorageException>(() => queue.RequeueDeadLettersAsync().WaitAsync(Bound));
            }
            finally
            {
                WriteGatedJournal.RejectWrites = false;
            }

            Assert.Single(await queue.DeadLettersAsync()); // before: requeued in memory only
            Assert.Equal(0, queue.Size);
            Assert.Equal(1, await queue.RequeueDeadLettersAsync().WaitAsync(Bound));
            Assert.Equal(1, queue.Size);
        }
        finally
        {
            WriteGatedJournal.RejectWrites = false;
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: workers started while the queue stops were spawned and never retired, so the stop never completed.
    /// Workers are started (ProcessAsync, StartWorkersAsync) while the queue is stopping. StartWorkers is handled
    /// alike in every behaviour (QueueRouterActor.Lifecycle.cs HandledInEveryState → QueueRouterActor.HandleStartWorkers):
    /// it retires the old workers and spawns new ones, and in Stopping nothing retires those: CheckStopped waits for
    /// <c>_pool.Count == 0</c>, the stop timeout cancels only busy workers, so the stop (and a DisposeAsync) never
    /// completes. Expected: workers started during a stop are retired with it (as Stopped's StopQueue does), or the start
    /// is refused; either way the stop completes.
    /// </summary>
    [Fact]
    public async Task Workers_started_while_the_queue_stops_do_not_hold_the_stop_for_ever()
    {
        var queue = new BoundedQueue<int>(maxSize: 10, system: Sys, name: "restaffed");
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.StartWorkersAsync(async (_, _) =>
        {
            inFirst.TrySetResult();
            await release.Task;
        }, numWorkers: 1);
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);

        var stop = queue.StopAsync(TimeSpan.FromSeconds(1));
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        try
        {
            await queue.StartWorkersAsync(_ => Task.CompletedTask, numWorkers: 1).WaitAsync(Bound);
        }
        catch (QueueStateException)
        {
            // refusing the start is fine too
        }

        release.SetResult();
        var stopped = await Poll.CompletesWithin(stop, Bound);
        Assert.True(stopped, $"StopAsync had not completed {Bound.TotalSeconds} s after the worker returned; status {queue.Status}, workers {queue.WorkerCount}");
        await queue.DisposeAsync().AsTask().WaitAsync(Bound);
    }
}
