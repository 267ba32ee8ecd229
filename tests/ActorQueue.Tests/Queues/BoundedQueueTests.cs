using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>lionfuncs' BoundedQueue behaviours, and the lifecycle and no-loss guarantees around them.</summary>
public class BoundedQueueTests : ActorQueueTestKit
{
    private BoundedQueue<int> NewQueue(int maxSize = 100, TimeSpan? timeout = null) => new(maxSize, timeout, system: Sys);

    [Fact]
    public void A_new_queue_is_idle_empty_and_has_no_workers()
    {
        using var queue = NewQueue(maxSize: 10, timeout: TimeSpan.FromMilliseconds(500));

        Assert.Equal(QueueStatus.Idle, queue.Status);
        Assert.Equal(10, queue.Capacity);
        Assert.Equal(TimeSpan.FromMilliseconds(500), queue.DefaultPutTimeout);
        Assert.Equal((0, true, false, 0), (queue.Size, queue.IsEmpty, queue.IsFull, queue.WorkerCount));
        Assert.Equal(new QueueMetrics(0, 0, 0, 0), queue.Metrics);
    }

    [Fact]
    public void The_default_put_timeout_is_lionfuncs_100_ms()
    {
        using var queue = NewQueue();
        Assert.Equal(TimeSpan.FromMilliseconds(100), queue.DefaultPutTimeout);
    }

    [Fact]
    public async Task Start_and_stop_move_the_queue_through_its_lifecycle_and_it_can_restart()
    {
        var queue = NewQueue();

        await queue.StartAsync();
        Assert.Equal(QueueStatus.Processing, queue.Status);
        await queue.StartAsync();
        Assert.Equal(QueueStatus.Processing, queue.Status);
        await queue.StopAsync();
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        await queue.StopAsync();
        await queue.StartAsync();
        Assert.Equal(QueueStatus.Processing, queue.Status);
        await queue.DisposeAsync();
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    [Fact]
    public async Task Put_and_get_are_fifo_and_join_waits_for_task_done()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();
        for (var i = 1; i <= 3; i++)
        {
            Assert.True(await queue.PutAsync(i));
        }

        Assert.Equal(3, queue.Size);
        var taken = new[] { await queue.GetAsync(), await queue.GetAsync(), await queue.GetAsync() };
        Assert.Equal([1, 2, 3], taken);

        var join = queue.JoinAsync();
        queue.TaskDone();
        queue.TaskDone();
        var status = await StatusOf(queue);
        Assert.Equal(1, status.Metrics.InFlight);
        Assert.False(join.IsCompleted, "one item is still not done");
        queue.TaskDone();
        await Within(join);
        Assert.Equal(new QueueMetrics(3, 3, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task A_get_waits_for_the_next_put()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();
        var get = queue.GetAsync();
        Assert.False(get.IsCompleted);

        await queue.PutAsync(42);

        Assert.Equal(42, await Within(get));
    }

    [Fact]
    public async Task Task_done_without_a_get_is_misuse()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();

        var ex = Assert.Throws<InvalidOperationException>(queue.TaskDone);
        Assert.Contains("TaskDone", ex.Message);
    }

    [Fact]
    public async Task A_full_queue_applies_backpressure_after_the_put_timeout()
    {
        await using var queue = NewQueue(maxSize: 1, timeout: TimeSpan.FromMilliseconds(10));
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1));
        Assert.True(queue.IsFull);

        Assert.False(await queue.PutAsync(2));
        Assert.False(await queue.PutAsync(3, TimeSpan.Zero));

        Assert.Equal(new QueueMetrics(1, 0, 0, 2), queue.Metrics);
        Assert.Equal(1, queue.Size);
    }

    [Fact]
    public async Task A_waiting_put_gets_in_when_space_frees()
    {
        await using var queue = NewQueue(maxSize: 1);
        await queue.StartAsync();
        await queue.PutAsync(1);
        var waiting = queue.PutAsync(2, Timeout.InfiniteTimeSpan);

        Assert.Equal(1, await queue.GetAsync());

        Assert.True(await Within(waiting));
        Assert.Equal(2, await queue.GetAsync());
        Assert.Equal(0, queue.Metrics.BackpressureEvents);
    }

    [Fact]
    public async Task A_cancelled_put_adds_nothing()
    {
        await using var queue = NewQueue(maxSize: 1);
        await queue.StartAsync();
        await queue.PutAsync(1);
        using var cts = new CancellationTokenSource();
        var waiting = queue.PutAsync(2, Timeout.InfiniteTimeSpan, cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(waiting));
        Assert.Equal(1, await queue.GetAsync());
        queue.TaskDone();
        await queue.JoinAsync();
        Assert.Equal(1, queue.Metrics.Enqueued);
    }

    [Theory]
    [InlineData(QueueStatus.Idle, "Cannot put items when queue is idle")]
    [InlineData(QueueStatus.Stopped, "Cannot put items when queue is stopped")]
    public async Task Put_outside_processing_throws_a_state_error(QueueStatus status, string message)
    {
        await using var queue = NewQueue();
        if (status == QueueStatus.Stopped)
        {
            await queue.StartAsync();
            await queue.StopAsync();
        }

        var ex = await Assert.ThrowsAsync<QueueStateException>(() => queue.PutAsync(1));

        Assert.Equal(message, ex.Message);
        Assert.Equal(status, ex.Status);
    }

    [Fact]
    public async Task Get_outside_processing_throws_a_state_error()
    {
        await using var queue = NewQueue();
        var ex = await Assert.ThrowsAsync<QueueStateException>(() => queue.GetAsync());
        Assert.Equal("Cannot get items when queue is idle", ex.Message);
    }

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
    public async Task Await_using_stops_the_queue_like_lionfuncs_context_manager()
    {
        BoundedQueue<int> escaped;
        await using (var queue = NewQueue())
        {
            escaped = queue;
            await queue.StartAsync();
            await queue.PutAsync(1);
            Assert.Equal(QueueStatus.Processing, queue.Status);
        }

        Assert.Equal(QueueStatus.Stopped, escaped.Status);
        Assert.Throws<ObjectDisposedException>(() => { _ = escaped.PutAsync(2); });
    }

    [Fact]
    public async Task Stop_keeps_queued_items_and_a_restart_finishes_them()
    {
        await using var queue = NewQueue();
        var processed = new ConcurrentQueue<int>();
        var started = new ConcurrentQueue<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.StartWorkersAsync(async (item, ct) =>
        {
            started.Enqueue(item);
            await gate.Task.WaitAsync(ct);
            processed.Enqueue(item);
        }, numWorkers: 1);
        for (var i = 1; i <= 5; i++)
        {
            await queue.PutAsync(i);
        }

        // The worker may have taken item 1 alone or 1..5 as one run (if all were queued before it was free): either
        // way, a stop lets item 1 finish and leaves 2..5 queued.
        await Eventually(() => started.Contains(1), "the worker runs item 1");
        var stop = queue.StopAsync(Timeout.InfiniteTimeSpan);
        await Eventually(() => queue.Status == QueueStatus.Stopping, "stopping");
        gate.SetResult();
        await Within(stop);

        Assert.Equal(QueueStatus.Stopped, queue.Status);
        Assert.Equal([1], processed);
        Assert.Equal(4, queue.Size);
        var join = await Assert.ThrowsAsync<QueueStateException>(() => queue.JoinAsync());
        Assert.Contains("4 pending items", join.Message);

        await queue.StartAsync();
        await Within(queue.JoinAsync());
        Assert.Equal([1, 2, 3, 4, 5], processed);
        Assert.Equal(new QueueMetrics(5, 5, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task Work_cancelled_by_the_stop_timeout_goes_back_to_the_head_of_the_queue()
    {
        await using var queue = NewQueue();
        var attempts = new ConcurrentQueue<int>();
        await queue.StartAsync();
        await queue.StartWorkersAsync(async (item, ct) =>
        {
            attempts.Enqueue(item);
            if (attempts.Count == 1)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
        }, numWorkers: 1);
        await queue.PutAsync(1);
        await queue.PutAsync(2);
        await Eventually(() => attempts.Count == 1, "item 1 runs");

        await Within(queue.StopAsync(TimeSpan.FromMilliseconds(50)));

        Assert.Equal(2, queue.Size);
        Assert.Equal(new QueueMetrics(2, 0, 0, 0), queue.Metrics);
        Assert.Equal([1, 2], await queue.DrainAsync());
        Assert.Equal(2, queue.Metrics.Drained);
    }

    [Fact]
    public async Task A_stop_refuses_waiting_puts_and_gets_instead_of_leaving_them_hanging()
    {
        await using var queue = NewQueue(maxSize: 1);
        await queue.StartAsync();
        await queue.PutAsync(1);
        var put = queue.PutAsync(2, Timeout.InfiniteTimeSpan);
        var emptyQueue = new BoundedQueue<int>(system: Sys);
        await emptyQueue.StartAsync();
        var get = emptyQueue.GetAsync();

        await queue.StopAsync();
        await emptyQueue.StopAsync();

        Assert.Equal("Cannot put items when queue is stopping", (await Assert.ThrowsAsync<QueueStateException>(() => Within(put))).Message);
        Assert.Equal("Cannot get items when queue is stopping", (await Assert.ThrowsAsync<QueueStateException>(() => Within(get))).Message);
        await emptyQueue.DisposeAsync();
    }

    [Fact]
    public async Task Drain_is_refused_while_processing()
    {
        await using var queue = NewQueue();
        await queue.StartAsync();
        await Assert.ThrowsAsync<QueueStateException>(queue.DrainAsync);
    }

    [Fact]
    public void Bad_arguments_name_the_parameter_and_the_value()
    {
        var size = Assert.Throws<ArgumentOutOfRangeException>(() => new BoundedQueue<int>(0, system: Sys));
        var timeout = Assert.Throws<ArgumentOutOfRangeException>(() => new BoundedQueue<int>(1, TimeSpan.FromSeconds(-2), system: Sys));

        Assert.Equal("maxSize", size.ParamName);
        Assert.Contains("maxSize must be >= 1, got 0", size.Message);
        Assert.Equal("timeout", timeout.ParamName);
        Assert.Contains("-00:00:02", timeout.Message);
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
        var worker = await Sys.ActorSelection(queue.Router.Path / "worker-*").ResolveOne(TimeSpan.FromSeconds(5));

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
