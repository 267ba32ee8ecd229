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
