using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>lionfuncs' put and get: FIFO order, backpressure on a full queue, waiting and cancelled puts, and TaskDone.</summary>
public class BoundedQueuePutGetTests : ActorQueueTestKit
{
    private BoundedQueue<int> NewQueue(int maxSize = 100, TimeSpan? timeout = null) => new(maxSize, timeout, system: Sys);

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

    private async Task<QueueProtocol.Status> StatusOf(BoundedQueue<int> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }
}
