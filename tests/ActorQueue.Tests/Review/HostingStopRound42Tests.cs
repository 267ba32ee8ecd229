using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 42 (helper 196): the host's stop at its deadline, racing Akka.Hosting's termination of the actor system
/// (CI, once: ActorQueueHostingTests.Host_shutdown_token_cancels_work_in_flight_so_the_host_stops_promptly_and_the_item_stays_queued,
/// "Timed out after 30 s waiting until the queue stopped"). At the deadline the host's token fires; ActorQueue's hosted
/// service returns at once, and the host goes on to Akka.Hosting, which terminates the system while the registry's
/// stop still waits for the worker. The system stopping the router completes the queue's stop (PostStop answers the
/// stops) without the router ever publishing <see cref="QueueStatus.Stopped"/>; and when that completion lands after the
/// registry's wait gave up but before it looked, the registry skipped the disposal of its queues and limiters, so
/// nothing ever made the queue read Stopped. Each half is forced here on its own.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingStopRound42Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30); // a hang guard only

    /// <summary>
    /// A queue whose actor system terminates under a worker's item, while the queue stops (with no timeout, so only the
    /// termination ends the stop) or while it processes. The stop completes, and the queue then reads
    /// <see cref="QueueStatus.Stopped"/>: its router is gone, so nothing will ever be processed again (every call
    /// fails with <see cref="ObjectDisposedException"/>). The item is accounted for: reported to the error handler as
    /// discarded and counted, and DisposeAsync completes.
    /// Failed before: the status stayed <see cref="QueueStatus.Stopping"/> (or <see cref="QueueStatus.Processing"/>)
    /// for good, the router's PostStop answering the stops without publishing it ("Expected: Stopped, Actual: Stopping").
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_queue_whose_actor_system_terminates_under_its_worker_reads_Stopped_and_accounts_for_the_item(bool stopping)
    {
        var system = ActorQueueRuntime.Create($"h196-terminated-{(stopping ? "stopping" : "processing")}");
        var queue = new WorkQueue<string>(maxSize: 10, concurrencyLimit: 1, system: system, name: "fetch");
        var worker = new HeldWorker();
        var reported = new ConcurrentQueue<(Exception Error, string Item)>();
        await queue.StartAsync().WaitAsync(Bound);
        await queue.ProcessAsync(worker.Run, numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        });
        Assert.True(await queue.PutAsync("long"));
        await worker.Running.WaitAsync(Bound);
        var stop = Task.CompletedTask;
        if (stopping)
        {
            stop = queue.StopAsync(Timeout.InfiniteTimeSpan); // only the termination ends it
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        }

        await system.Terminate().WaitAsync(Bound);

        await stop.WaitAsync(Bound);
        Assert.Equal(QueueStatus.Stopped, queue.Status); // failed: Stopping (Processing)
        await Poll.UntilAsync(() => !reported.IsEmpty, Bound, "the item is reported");
        Assert.Equal("long", Assert.Single(reported).Item);
        var metrics = queue.Metrics;
        Assert.Equal((0, 1, 1), (metrics.Processed, metrics.Enqueued, metrics.Discarded));
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
        await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        worker.Release();
    }

    /// <summary>
    /// The CI run's order, forced: a registry's stop (the host's token as its deadline) waits for a queue whose worker
    /// holds an item; the deadline passes, and before the registry looks at its queues' stops the actor system terminates
    /// (Akka.Hosting, the host's next service), which completes the queue's stop. The registry still disposes its queues
    /// and limiters, and its stop completes: the queue reads <see cref="QueueStatus.Stopped"/> and its item is counted.
    /// Failed before: the wait's <see cref="OperationCanceledException"/> was caught only while the stops had not
    /// completed, so it escaped: the stop failed ("OperationCanceledException: The operation was canceled"), and no queue or limiter was disposed.
    /// </summary>
    [Fact]
    public async Task A_registry_stop_whose_queues_stop_after_its_deadline_passed_still_disposes_them()
    {
        var system = ActorQueueRuntime.Create("h196-registry-deadline");
        var worker = new HeldWorker();
        try
        {
            var options = new ActorQueueOptions();
            options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 };
            options.Queues["fetch"] = new QueueOptions { MaxSize = 10, Limiter = "llm" };
            var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);
            var limiter = (ConcurrencyLimiter)registry.GetLimiter("llm");
            var queue = registry.GetQueue<string>("fetch");
            await queue.StartAsync().WaitAsync(Bound);
            await queue.ProcessAsync(worker.Run);
            Assert.True(await queue.PutAsync("long"));
            await worker.Running.WaitAsync(Bound);

            // The wait gives up at the deadline; the system then terminates and the queue's stop completes, all before the
            // registry looks (on a busy machine, the thread that cancelled the wait paused between the two).
            registry.WaitForStops = async (stopped, deadline) =>
            {
                var gaveUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await using (deadline.UnsafeRegister(static state => ((TaskCompletionSource)state!).TrySetResult(), gaveUp))
                {
                    await gaveUp.Task;
                }

                await system.Terminate();
                await stopped;
                throw new OperationCanceledException(deadline);
            };
            using var deadline = new CancellationTokenSource();
            var stop = registry.StopAsync(deadline.Token);
            await deadline.CancelAsync();

            await stop.WaitAsync(Bound); // failed: OperationCanceledException
            await worker.Cancelled.WaitAsync(Bound);
            Assert.True(queue.Queue.RouterOwner.IsDisposed, "the registry disposed its queue");
            Assert.True(limiter.IsDisposed, "the registry disposed its limiter");
            Assert.Equal(QueueStatus.Stopped, queue.Status);
            Assert.Equal((0, 1), (queue.Metrics.Processed, queue.Metrics.Enqueued));
        }
        finally
        {
            worker.Release();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A worker that holds its item until its token is cancelled, and then until the test releases it: so the actor
    /// system's end, not this worker's return, ends its queue's stop.
    /// </summary>
    private sealed class HeldWorker
    {
        private readonly TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes when the worker holds its item.</summary>
        public Task Running => _running.Task;

        /// <summary>Completes when the worker's token is cancelled.</summary>
        public Task Cancelled => _cancelled.Task;

        public void Release() => _released.TrySetResult();

        public async Task Run(string item, CancellationToken token)
        {
            _running.TrySetResult();
            await using (token.UnsafeRegister(static state => ((TaskCompletionSource)state!).TrySetResult(), _cancelled))
            {
                await _cancelled.Task;
            }

            await _released.Task;
            throw new OperationCanceledException($"{item}: cancelled", token);
        }
    }
}
