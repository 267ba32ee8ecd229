using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>The lifecycle: idle → processing → stopping → stopped and back, what each status refuses, and the arguments checked at the boundary.</summary>
public class BoundedQueueLifecycleTests : ActorQueueTestKit
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
}
