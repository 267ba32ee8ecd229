using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>The callers waiting on the queue's lifecycle, without an actor.</summary>
public class LifecycleWaitersTests
{
    [Fact]
    public void A_join_with_nothing_unfinished_completes_at_once_and_others_when_the_last_item_finishes()
    {
        var waiters = new LifecycleWaiters();
        var early = new JoinQueue();
        var late = new JoinQueue();

        waiters.Join(early, unfinished: 0);
        waiters.Join(late, unfinished: 2);
        waiters.Settled(unfinished: 1);
        Assert.False(late.Completion.Task.IsCompleted);
        waiters.Settled(unfinished: 0);

        Assert.True(early.Completion.Task.IsCompletedSuccessfully);
        Assert.True(late.Completion.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_join_on_a_stopped_queue_with_items_pending_fails_naming_the_count()
    {
        var join = new JoinQueue();

        LifecycleWaiters.JoinStopped(join, unfinished: 3);

        var error = Assert.IsType<QueueStateException>(join.Completion.Task.Exception!.InnerException);
        Assert.Equal(QueueStatus.Stopped, error.Status);
        Assert.StartsWith("Cannot join a stopped queue with 3 pending items", error.Message);
    }

    [Fact]
    public void Stopping_with_items_pending_fails_the_waiting_joins_and_then_completes_the_stops()
    {
        var waiters = new LifecycleWaiters();
        var join = new JoinQueue();
        var stop = new StopQueue(TimeSpan.Zero, terminate: false);
        waiters.Join(join, unfinished: 1);
        waiters.AddStopper(stop);

        waiters.FailJoins(unfinished: 1);
        Assert.False(stop.Completion.Task.IsCompleted, "a stop completes only once every worker is gone");
        waiters.CompleteStops();

        Assert.IsType<QueueStateException>(join.Completion.Task.Exception!.InnerException);
        Assert.True(stop.Completion.Task.IsCompletedSuccessfully);
        Assert.False(waiters.TerminateWhenStopped);
    }

    [Fact]
    public void A_stop_that_disposes_makes_the_router_terminate_once_stopped()
    {
        var waiters = new LifecycleWaiters();

        waiters.AddStopper(new StopQueue(TimeSpan.Zero, terminate: false));
        waiters.AddStopper(new StopQueue(TimeSpan.Zero, terminate: true));
        waiters.AddStopper(new StopQueue(TimeSpan.Zero, terminate: false));

        Assert.True(waiters.TerminateWhenStopped);
    }

    [Fact]
    public void When_the_router_is_gone_the_joins_fail_with_the_disposal()
    {
        var waiters = new LifecycleWaiters();
        var join = new JoinQueue();
        waiters.Join(join, unfinished: 1);
        var disposed = QueueErrors.Disposed();

        waiters.FailJoins(disposed);

        Assert.Same(disposed, join.Completion.Task.Exception!.InnerException);
    }
}
