using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// A facade put that finds space the router reserved for it (a credit) completes without a message; the router takes
/// the item in before its next message, and is told only when a free worker or getter could be waiting for it.
/// </summary>
public class CreditedPutTests : ActorQueueTestKit
{
    [Fact]
    public async Task An_item_the_router_has_not_taken_in_yet_is_already_counted_in_size_and_metrics()
    {
        await using var queue = new BoundedQueue<int>(10, system: Sys);
        await queue.StartAsync();

        // No worker and no getter could take the item, so the router is not told: the item waits in the inbox.
        Assert.True(await queue.PutAsync(1));

        Assert.Equal((1, false), (queue.Size, queue.IsEmpty));
        Assert.Equal(new QueueMetrics(1, 0, 0, 0), queue.Metrics);
        var status = await StatusOf(queue);
        Assert.Equal((1, 1L), (status.Size, status.Metrics.Enqueued));
        Assert.Equal((1, 1L), (queue.Size, queue.Metrics.Enqueued));
    }

    [Fact]
    public async Task An_item_reaches_a_free_worker_while_another_worker_stays_busy()
    {
        // No heartbeat within the test: the router's periodic debug log would also take the inbox in.
        await using var queue = new BoundedQueue<int>(10, null, TimeSpan.FromHours(1), null, Sys, null);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bothRunning = new CountdownEvent(2);
        var finished = new ConcurrentQueue<int>();
        await queue.StartAsync();
        await queue.StartWorkersAsync(async item =>
        {
            if (item < 0)
            {
                // Warm-up: both workers hold an item at once, so both have asked for work and are free afterwards.
                bothRunning.Signal();
                await Poll.UntilAsync(() => bothRunning.IsSet, Dilated(TimeSpan.FromSeconds(10)), "both workers run a warm-up item");
            }
            else if (item == 1)
            {
                await gate.Task;
            }

            finished.Enqueue(item);
        }, numWorkers: 2);
        await queue.PutAsync(-1);
        await queue.PutAsync(-2);
        await Eventually(() => finished.Count == 2 && queue.Metrics.Processed == 2, "both warm-up items are done");

        await queue.PutAsync(1);
        await queue.PutAsync(2);

        // Item 2 must not wait for the busy worker's report: the free worker gets it now.
        await Eventually(() => finished.Contains(2), "item 2 is processed while item 1 still runs");
        Assert.DoesNotContain(1, finished);
        gate.SetResult();
        await Within(queue.JoinAsync());
        Assert.Equal(4, queue.Metrics.Processed);
    }

    [Fact]
    public async Task Items_put_while_every_worker_is_busy_are_taken_in_at_the_next_report_in_order()
    {
        await using var queue = new BoundedQueue<int>(10, system: Sys);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new ConcurrentQueue<int>();
        await queue.StartAsync();
        await queue.StartWorkersAsync(async item =>
        {
            if (item == 1)
            {
                await gate.Task;
            }

            finished.Enqueue(item);
        }, numWorkers: 1);
        await queue.PutAsync(1);
        await Eventually(() => queue.Metrics.InFlight == 1, "the worker holds item 1");

        for (var i = 2; i <= 6; i++)
        {
            Assert.True(await queue.PutAsync(i));
        }

        Assert.Equal(5, queue.Size);
        gate.SetResult();
        await Within(queue.JoinAsync());
        Assert.Equal([1, 2, 3, 4, 5, 6], finished);
        Assert.Equal(new QueueMetrics(6, 6, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task Puts_never_fill_more_than_the_capacity_and_a_later_put_meets_backpressure()
    {
        await using var queue = new BoundedQueue<int>(3, TimeSpan.Zero, system: Sys);
        await queue.StartAsync();

        var accepted = new List<bool>();
        for (var i = 1; i <= 5; i++)
        {
            accepted.Add(await queue.PutAsync(i));
        }

        Assert.Equal([true, true, true, false, false], accepted);
        Assert.Equal((3, true), (queue.Size, queue.IsFull));
        Assert.Equal(new QueueMetrics(3, 0, 0, 2), queue.Metrics);
        await queue.StopAsync();
        Assert.Equal([1, 2, 3], await queue.DrainAsync());
    }

    [Fact]
    public async Task A_get_waiting_for_an_item_gets_the_next_put_at_once()
    {
        await using var queue = new BoundedQueue<int>(10, null, TimeSpan.FromHours(1), null, Sys, null); // no heartbeat
        await queue.StartAsync();
        var get = queue.GetAsync();

        Assert.True(await queue.PutAsync(7));

        Assert.Equal(7, await Within(get));
    }

    [Fact]
    public async Task An_actor_put_takes_back_the_space_reserved_for_facade_puts()
    {
        await using var queue = new BoundedQueue<int>(2, system: Sys);
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1)); // the one free place left is now reserved for the facade
        var probe = CreateTestProbe();

        queue.Router.Tell(new QueueProtocol.Put(2, 5, TimeSpan.Zero), probe.Ref);

        await probe.ExpectMsgAsync(new QueueProtocol.Accepted(5));
        Assert.False(await queue.PutAsync(3, TimeSpan.Zero));
        Assert.Equal(2, queue.Size);
    }

    private async Task<QueueProtocol.Status> StatusOf(BoundedQueue<int> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }
}
