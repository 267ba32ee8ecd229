using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// A free worker of a busy queue takes its share of the backlog as one run. Each test leaves one worker holding
/// items 2..9 with item <c>holdAt</c> running and blocked, then checks that stopping, retiring, cancelling or
/// crashing loses nothing and keeps the order: the item in hand ends as it would alone, the rest go back to the head.
/// </summary>
public class WorkerBatchTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_free_worker_takes_its_share_of_the_backlog_in_order_as_one_run()
    {
        await using var setup = await HoldingABatchAsync(holdAt: 2);

        Assert.Equal((0, 8), (setup.Queue.Size, setup.Queue.Metrics.InFlight));
        setup.Release();
        await Within(setup.Queue.JoinAsync());
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9], setup.Finished);
        Assert.Equal(new QueueMetrics(9, 9, 0, 0), setup.Queue.Metrics);
    }

    [Fact]
    public async Task A_stop_lets_the_item_in_hand_finish_and_puts_the_rest_of_the_run_back_at_the_head()
    {
        await using var setup = await HoldingABatchAsync(holdAt: 3);

        var stop = setup.Queue.StopAsync(Timeout.InfiniteTimeSpan);
        await Eventually(() => setup.Queue.Status == QueueStatus.Stopping, "stopping");
        setup.Release();
        await Within(stop);

        Assert.Equal([1, 2, 3], setup.Finished);
        Assert.Equal(new QueueMetrics(9, 3, 0, 0), setup.Queue.Metrics);
        Assert.Equal([4, 5, 6, 7, 8, 9], await setup.Queue.DrainAsync());
    }

    [Fact]
    public async Task Replaced_workers_hand_the_rest_of_their_run_to_the_new_ones()
    {
        await using var setup = await HoldingABatchAsync(holdAt: 2);
        var byNew = new ConcurrentQueue<int>();

        await setup.Queue.StartWorkersAsync(item =>
        {
            byNew.Enqueue(item);
            return Task.CompletedTask;
        }, numWorkers: 1);
        setup.Release();
        await Within(setup.Queue.JoinAsync());

        Assert.Equal([1, 2], setup.Finished);
        Assert.Equal([3, 4, 5, 6, 7, 8, 9], byNew);
        Assert.Equal(9, setup.Queue.Metrics.Processed);
    }

    [Fact]
    public async Task The_stop_timeout_puts_the_cancelled_item_and_the_rest_of_the_run_back_in_order()
    {
        await using var setup = await HoldingABatchAsync(holdAt: 4);

        await Within(setup.Queue.StopAsync(TimeSpan.FromMilliseconds(50)));

        Assert.Equal([1, 2, 3], setup.Finished);
        Assert.Equal(new QueueMetrics(9, 3, 0, 0), setup.Queue.Metrics);
        Assert.Equal([4, 5, 6, 7, 8, 9], await setup.Queue.DrainAsync());
    }

    [Fact]
    public async Task A_crash_reports_only_the_item_in_hand_as_an_error_and_the_rest_is_processed_after_the_restart()
    {
        await using var setup = await HoldingABatchAsync(holdAt: 5);
        var worker = await Sys.ActorSelection(setup.Queue.Router.Path / "worker-*").ResolveOne(Dilated(TimeSpan.FromSeconds(10)));

        worker.Tell(Kill.Instance); // the worker actor throws, as a bug in it would
        await Eventually(() => setup.Failed.Count == 1, "the item in hand reached the error handler");
        setup.Release();
        await Within(setup.Queue.JoinAsync());

        Assert.Equal([5], setup.Failed);
        Assert.Equal([1, 2, 3, 4, 6, 7, 8, 9], setup.Finished);
        Assert.Equal(new QueueMetrics(9, 9, 1, 0), setup.Queue.Metrics);
    }

    [Fact]
    public async Task With_a_worker_batch_of_one_each_free_worker_takes_one_item_of_a_backlog()
    {
        // What the CLI's job runner relies on: -j 2 means jobs 1 and 2 run at once, even when both were queued before
        // the workers asked for work (with a larger batch, the first worker would take both, one behind the other).
        await using var queue = new BoundedQueue<int>(100, system: Sys, workerBatch: 1);

        await TwoItemsOfABacklogRunAtOnceAsync(queue);
    }

    [Fact]
    public async Task A_work_queue_takes_its_worker_batch_from_its_config()
    {
        await using var work = new WorkQueue<int>(new QueueConfig { WorkerBatch = 1 }, system: Sys);

        await TwoItemsOfABacklogRunAtOnceAsync(work.Queue);
    }

    [Fact]
    public void A_worker_batch_below_one_is_refused_naming_the_parameter_and_the_value()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new BoundedQueue<int>(10, system: Sys, workerBatch: 0));

        Assert.Equal("workerBatch", error.ParamName);
        Assert.Contains("workerBatch must be >= 1 when set, got 0", error.Message);
    }

    [Fact]
    public void A_worker_batch_below_one_is_refused_with_the_setting_and_the_value()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("actorqueue.queue.worker-batch = 0")
            .WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ActorQueue.Runtime.ActorQueueSettings.From(config));

        Assert.Equal("actorqueue.queue.worker-batch", error.ParamName);
        Assert.Contains("got 0", error.Message);
    }

    /// <summary>Queues items 1..4 before two workers start, and checks that items 1 and 2 run at the same time.</summary>
    private async Task TwoItemsOfABacklogRunAtOnceAsync(BoundedQueue<int> queue)
    {
        using var bothRunning = new CountdownEvent(2);
        await queue.StartAsync();
        for (var i = 1; i <= 4; i++)
        {
            await queue.PutAsync(i);
        }

        await queue.StartWorkersAsync(async item =>
        {
            if (item <= 2)
            {
                bothRunning.Signal();
                await Poll.UntilAsync(() => bothRunning.IsSet, Dilated(TimeSpan.FromSeconds(10)), "items 1 and 2 run at once");
            }
        }, numWorkers: 2);

        await Within(queue.JoinAsync());
        Assert.Equal(new QueueMetrics(4, 4, 0, 0), queue.Metrics);
    }

    /// <summary>
    /// One worker: item 1 runs alone while 2..9 are queued, then the worker takes 2..9 as one run and blocks on
    /// <paramref name="holdAt"/> (cancellable, so a stop timeout or crash can end it).
    /// </summary>
    private async Task<Setup> HoldingABatchAsync(int holdAt)
    {
        var setup = new Setup(new BoundedQueue<int>(100, system: Sys));
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new ConcurrentQueue<int>();
        await setup.Queue.StartAsync();
        await setup.Queue.StartWorkersAsync(async (item, ct) =>
        {
            started.Enqueue(item);
            if (item == 1)
            {
                await first.Task.WaitAsync(ct);
            }
            else if (item == holdAt)
            {
                await setup.Gate.Task.WaitAsync(ct);
            }

            setup.Finished.Enqueue(item);
        }, numWorkers: 1, errorHandler: (_, item) =>
        {
            setup.Failed.Enqueue(item);
            return Task.CompletedTask;
        });
        await setup.Queue.PutAsync(1);
        await Eventually(() => started.Contains(1), "item 1 runs");
        for (var i = 2; i <= 9; i++)
        {
            await setup.Queue.PutAsync(i);
        }

        first.SetResult();
        await Eventually(() => started.Contains(holdAt), $"item {holdAt} runs");
        await Eventually(() => setup.Queue.Metrics.InFlight == 8 && setup.Queue.Size == 0, "the worker holds 2..9 as one run");
        return setup;
    }

    private sealed class Setup(BoundedQueue<int> queue) : IAsyncDisposable
    {
        public BoundedQueue<int> Queue { get; } = queue;

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<int> Finished { get; } = [];

        public ConcurrentQueue<int> Failed { get; } = [];

        public void Release() => Gate.TrySetResult();

        public ValueTask DisposeAsync()
        {
            Release();
            return Queue.DisposeAsync();
        }
    }
}
