using ActorQueue.Actors;
using static ActorQueue.Actors.QueueProtocol;
using Status = ActorQueue.Actors.QueueProtocol.Status;

namespace ActorQueue.Tests.Queues;

/// <summary>The queue router as actor callers see it, driven through TestProbes.</summary>
public class QueueProtocolTests : ActorQueueTestKit
{
    [Fact]
    public async Task Router_must_accept_a_put_from_an_actor_and_process_it_with_the_facades_workers()
    {
        await using var queue = new BoundedQueue<string>(system: Sys);
        var processed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.StartWorkersAsync(item =>
        {
            processed.TrySetResult(item);
            return Task.CompletedTask;
        }, 1);
        var probe = CreateTestProbe();

        queue.Router.Tell(new Put("from-actor", 7), probe.Ref);

        await probe.ExpectMsgAsync(new Accepted(7));
        Assert.Equal("from-actor", await Within(processed.Task));
    }

    [Fact]
    public async Task Router_must_answer_rejected_full_and_count_backpressure()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 1, system: Sys);
        await queue.StartAsync();
        var probe = CreateTestProbe();
        queue.Router.Tell(new Put(1, 1), probe.Ref);
        await probe.ExpectMsgAsync(new Accepted(1));

        queue.Router.Tell(new Put(2, 2), probe.Ref);
        queue.Router.Tell(new Put(3, 3, TimeSpan.FromMilliseconds(20)), probe.Ref);

        await probe.ExpectMsgAsync(new RejectedFull(2));
        await probe.ExpectMsgAsync(new RejectedFull(3));
        queue.Router.Tell(GetStatus.Instance, probe.Ref);
        var status = await probe.ExpectMsgAsync<Status>();
        Assert.Equal((QueueStatus.Processing, 1, 1, 2L), (status.State, status.Size, status.Capacity, status.Metrics.BackpressureEvents));
    }

    [Fact]
    public async Task Router_must_let_an_actor_put_wait_for_space()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 1, system: Sys);
        await queue.StartAsync();
        await queue.PutAsync(1);
        var probe = CreateTestProbe();

        queue.Router.Tell(new Put(2, 9, Timeout.InfiniteTimeSpan), probe.Ref);
        Assert.Equal(1, await queue.GetAsync());

        await probe.ExpectMsgAsync(new Accepted(9));
        Assert.Equal(2, await queue.GetAsync());
    }

    [Fact]
    public async Task Router_must_reject_a_put_when_not_processing()
    {
        await using var queue = new BoundedQueue<int>(system: Sys);
        var probe = CreateTestProbe();

        queue.Router.Tell(new Put(1, 4), probe.Ref);

        await probe.ExpectMsgAsync(new RejectedState(4, QueueStatus.Idle, "Cannot put items when queue is idle"));
    }

    [Fact]
    public async Task Router_must_reject_an_item_of_the_wrong_type()
    {
        await using var queue = new BoundedQueue<int>(system: Sys);
        await queue.StartAsync();
        var probe = CreateTestProbe();

        queue.Router.Tell(new Put("not an int", 5), probe.Ref);

        var rejected = await probe.ExpectMsgAsync<RejectedInvalid>();
        Assert.Equal(5, rejected.CorrelationId);
        Assert.Contains("System.Int32", rejected.Reason);
        Assert.Equal(0, queue.Metrics.Enqueued);
    }
}
