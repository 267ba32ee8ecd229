using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>Workers: every item processed and counted, workers replaced, errors and crashes that lose no item.</summary>
public class BoundedQueueWorkerTests : ActorQueueTestKit
{
    private BoundedQueue<int> NewQueue(int maxSize = 100, TimeSpan? timeout = null) => new(maxSize, timeout, system: Sys);

    [Fact]
    public async Task Workers_process_every_item_and_the_count_is_reported()
    {
        await using var queue = NewQueue(maxSize: 5);
        var seen = new ConcurrentBag<int>();
        await queue.StartAsync();

        await queue.StartWorkersAsync(async item =>
        {
            await Task.Yield();
            seen.Add(item);
        }, numWorkers: 3);
        Assert.Equal(3, queue.WorkerCount);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(await queue.PutAsync(i, Timeout.InfiniteTimeSpan));
        }

        await Within(queue.JoinAsync());
        Assert.Equal(Enumerable.Range(0, 10), seen.Order());
        Assert.Equal(new QueueMetrics(10, 10, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task Starting_workers_again_replaces_them_after_their_current_item()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var byGeneration = new ConcurrentQueue<string>();
        await queue.StartWorkersAsync(async (item, ct) =>
        {
            byGeneration.Enqueue($"old:{item}");
            await gate.Task.WaitAsync(ct);
        }, numWorkers: 2);
        await queue.PutAsync(1);
        await Eventually(() => byGeneration.Count == 1, "an old worker holds item 1");

        await queue.StartWorkersAsync(item =>
        {
            byGeneration.Enqueue($"new:{item}");
            return Task.CompletedTask;
        }, numWorkers: 4);
        Assert.Equal(4, queue.WorkerCount);
        await queue.PutAsync(2);
        await Eventually(() => byGeneration.Contains("new:2"), "a new worker took item 2");
        gate.SetResult();
        await Within(queue.JoinAsync());

        Assert.Equal(["old:1", "new:2"], byGeneration);
        Assert.Equal(2, queue.Metrics.Processed);
    }

    [Fact]
    public async Task Start_workers_rejects_a_worker_count_below_one()
    {
        await using var queue = NewQueue();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = queue.StartWorkersAsync(_ => Task.CompletedTask, 0); });
        Assert.Equal("numWorkers", ex.ParamName);
        Assert.Contains("got 0", ex.Message);
    }

    [Fact]
    public async Task A_worker_error_goes_to_the_error_handler_and_the_worker_keeps_going()
    {
        await using var queue = NewQueue();
        var handled = new ConcurrentQueue<(string Message, int Item)>();
        await queue.StartAsync();
        await queue.StartWorkersAsync(item => item % 2 == 0 ? throw new InvalidOperationException($"bad {item}") : Task.CompletedTask,
            numWorkers: 1,
            errorHandler: (ex, item) =>
            {
                handled.Enqueue((ex.Message, item));
                return Task.CompletedTask;
            });

        for (var i = 1; i <= 4; i++)
        {
            await queue.PutAsync(i);
        }

        await Within(queue.JoinAsync());
        Assert.Equal([("bad 2", 2), ("bad 4", 4)], handled.OrderBy(h => h.Item));
        Assert.Equal(new QueueMetrics(4, 4, 2, 0), queue.Metrics);
    }

    [Fact]
    public async Task A_worker_error_without_a_handler_is_counted_and_the_queue_goes_on()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();
        await queue.StartWorkersAsync(item => item == 1 ? throw new InvalidOperationException("boom") : Task.CompletedTask, numWorkers: 1);

        await queue.PutAsync(1);
        await queue.PutAsync(2);

        await Within(queue.JoinAsync());
        Assert.Equal(new QueueMetrics(2, 2, 1, 0), queue.Metrics);
    }

    [Fact]
    public async Task An_error_handler_that_throws_is_swallowed_and_kills_nothing()
    {
        await using var queue = NewQueue();
        var processed = 0;
        await queue.StartAsync();
        await queue.StartWorkersAsync(item =>
        {
            Interlocked.Increment(ref processed);
            return item == 1 ? throw new InvalidOperationException("worker") : Task.CompletedTask;
        }, numWorkers: 1, errorHandler: (_, _) => throw new InvalidOperationException("handler"));

        await queue.PutAsync(1);
        await queue.PutAsync(2);

        await Within(queue.JoinAsync());
        Assert.Equal(2, processed);
        Assert.Equal(new QueueMetrics(2, 2, 1, 0), queue.Metrics);
        Assert.Equal(1, queue.WorkerCount);
    }

    [Fact]
    public async Task A_worker_actor_that_crashes_loses_no_item_and_is_restarted()
    {
        await using var queue = NewQueue();
        var handled = new ConcurrentQueue<(Exception, int)>();
        var processed = new ConcurrentQueue<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.StartWorkersAsync(async (item, ct) =>
        {
            if (item == 1)
            {
                await gate.Task.WaitAsync(ct); // the crash cancels the run in flight
            }

            processed.Enqueue(item);
        }, numWorkers: 1, errorHandler: (ex, item) =>
        {
            handled.Enqueue((ex, item));
            return Task.CompletedTask;
        });
        await queue.PutAsync(1);
        await Eventually(() => queue.Metrics.InFlight == 1, "item 1 is in flight");
        var worker = await Sys.ActorSelection(queue.Router.Path / "worker-*").ResolveOne(Dilated(TimeSpan.FromSeconds(10)));

        worker.Tell(Kill.Instance); // the worker actor throws, as a bug in it would
        await Eventually(() => handled.Count == 1, "the crashed item reached the error handler");
        gate.SetResult();
        await queue.PutAsync(2);
        await Within(queue.JoinAsync());

        var (error, item) = Assert.Single(handled);
        Assert.IsType<ActorKilledException>(error);
        Assert.Equal(1, item);
        Assert.Equal([2], processed);
        Assert.Equal(new QueueMetrics(2, 2, 1, 0), queue.Metrics);
        Assert.Equal(1, queue.WorkerCount);
    }

    [Fact]
    public async Task After_ten_thousand_items_with_random_failures_every_item_is_accounted_for()
    {
        await using var queue = NewQueue(maxSize: 64);
        var failures = 0;
        await queue.StartAsync();
        await queue.StartWorkersAsync(item =>
        {
            if (item % 7 == 3)
            {
                Interlocked.Increment(ref failures);
                throw new InvalidOperationException("random failure");
            }

            return Task.CompletedTask;
        }, numWorkers: 4, errorHandler: (_, _) => Task.CompletedTask);

        var accepted = 0;
        for (var i = 0; i < 10_000; i++)
        {
            if (await queue.PutAsync(i, Timeout.InfiniteTimeSpan))
            {
                accepted++;
            }

            if (i % 1000 == 0)
            {
                var snapshot = await StatusOf(queue);
                Assert.Equal(snapshot.Metrics.Enqueued, snapshot.Metrics.Processed + snapshot.Size + snapshot.Metrics.InFlight);
            }
        }

        await Within(queue.JoinAsync());
        var final = await StatusOf(queue);
        Assert.Equal(10_000, accepted);
        Assert.Equal(new QueueMetrics(10_000, 10_000, failures, 0), final.Metrics);
        Assert.Equal(0, final.Size);
    }

    private async Task<QueueProtocol.Status> StatusOf(BoundedQueue<int> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }
}
