using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>The router's books on its workers, without actors: workers are named by strings here.</summary>
public class WorkerPoolTests
{
    private static WorkerPool<string, int> PoolOf(int workerBatch, params string[] workers)
    {
        var pool = new WorkerPool<string, int>(workerBatch, StringComparer.Ordinal);
        foreach (var worker in workers)
        {
            pool.Add(worker);
        }

        return pool;
    }

    /// <summary>Takes the longest-free worker and gives it <paramref name="items"/>; returns the worker and the run it holds.</summary>
    private static (string Worker, WorkerRun<int>? Sent) GiveNext(WorkerPool<string, int> pool, params int[] items)
    {
        Assert.True(pool.TryTakeIdle(out var worker, out var slot));
        return (worker, pool.Give(slot, items));
    }

    [Theory]
    [InlineData(1, 4, 32, 1)] // a short queue: one item each, so every worker gets one
    [InlineData(8, 4, 32, 2)]
    [InlineData(100, 2, 32, 32)] // a long queue: at most the batch
    [InlineData(5, 0, 32, 5)] // no active worker (all retiring): the whole backlog, within the batch
    [InlineData(100, 1, 1, 1)] // a batch of one hands items out one by one
    public void A_free_worker_takes_its_share_of_the_backlog_within_one_and_the_batch(int backlog, int activeWorkers, int workerBatch, int share)
    {
        Assert.Equal(share, BacklogShare.For(backlog, activeWorkers, workerBatch));
    }

    [Fact]
    public void Free_workers_are_taken_in_the_order_they_became_free_and_each_once()
    {
        var pool = PoolOf(32, "a", "b", "c");
        Assert.False(pool.HasIdleWorker(), "a new worker is free only once it asks for work");

        Assert.True(pool.MarkIdle("c"));
        Assert.True(pool.MarkIdle("a"));
        Assert.True(pool.MarkIdle("c"));

        Assert.Equal("c", GiveNext(pool, 1).Worker);
        Assert.Equal("a", GiveNext(pool, 2).Worker);
        Assert.False(pool.HasIdleWorker());
    }

    [Fact]
    public void A_worker_that_retires_or_is_gone_is_never_taken_as_free()
    {
        var pool = PoolOf(32, "a", "b");
        pool.MarkIdle("a");
        pool.MarkIdle("b");

        Assert.Equal(["a", "b"], pool.RetireAll());
        Assert.False(pool.MarkIdle("a"));
        Assert.False(pool.MarkIdle("unknown"));
        Assert.False(pool.HasIdleWorker());
        Assert.Equal((2, 0), (pool.Count, pool.ActiveCount));
    }

    [Fact]
    public void The_first_run_of_a_worker_is_sent_to_its_actor()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");

        var (_, sent) = GiveNext(pool, 1, 2);

        Assert.NotNull(sent);
        Assert.Equal([1, 2], sent.Items);
        Assert.Equal(1, sent.Progress.Sequence);
    }

    [Fact]
    public void A_run_is_handed_to_the_task_that_reported_instead_of_being_sent()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        var task = GiveNext(pool, 1).Sent!;
        task.OpenForHandOver();
        Assert.True(pool.Finished("a", 1, completed: 1, failed: 0, out _).Settles);

        var (_, sent) = GiveNext(pool, 2, 3);

        Assert.Null(sent);
        Assert.True(task.NextAsync().IsCompletedSuccessfully);
        Assert.Equal([2, 3], task.Items);
        Assert.Equal(2, task.Progress.Sequence);
    }

    [Fact]
    public void A_report_settles_only_the_run_the_worker_holds_under_its_number_and_only_once()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        GiveNext(pool, 7, 8, 9);

        Assert.False(pool.Finished("a", 2, 3, 0, out _).Settles);
        var settled = pool.Finished("a", 1, completed: 2, failed: 1, out var stop);
        Assert.False(pool.Finished("a", 1, 2, 1, out _).Settles);

        Assert.Equal(new RunSettlement<int>(settled.Items, 2, 1, 0), settled);
        Assert.Equal([7, 8, 9], settled.Items);
        Assert.False(stop);
        Assert.True(pool.HasIdleWorker(), "the worker is free again");
    }

    [Fact]
    public void A_retiring_worker_is_to_be_stopped_once_it_reports_and_is_not_free_again()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        var task = GiveNext(pool, 1, 2).Sent!;

        Assert.Empty(pool.RetireAll());
        Assert.True(task.ShouldStop, "the busy worker's task is told to yield");
        pool.Finished("a", 1, completed: 1, failed: 0, out var stop);

        Assert.True(stop);
        Assert.False(pool.HasIdleWorker());
    }

    [Fact]
    public void A_crash_loses_the_item_in_hand_and_the_rest_of_the_run_goes_back()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        GiveNext(pool, 1, 2, 3, 4);

        var settled = pool.Crashed("a", 1, completed: 1, failed: 0);

        Assert.Equal((1, 0, 1, 2), (settled.Completed, settled.Failed, settled.Lost, settled.LostItem));
        Assert.False(pool.Crashed("a", 1, 1, 0).Settles, "a second report of the same run settles nothing");
    }

    [Fact]
    public void A_crash_after_the_whole_run_finished_loses_nothing()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        GiveNext(pool, 1, 2);

        var settled = pool.Crashed("a", 1, completed: 2, failed: 1);

        Assert.Equal((2, 1, 0), (settled.Completed, settled.Failed, settled.Lost));
    }

    [Fact]
    public void A_crash_report_naming_the_run_before_a_hand_over_returns_the_handed_over_run_whole()
    {
        var pool = PoolOf(32, "a");
        pool.MarkIdle("a");
        var task = GiveNext(pool, 1).Sent!;
        task.OpenForHandOver();
        pool.Finished("a", 1, 1, 0, out _);
        Assert.Null(GiveNext(pool, 2, 3).Sent); // handed to the task, which has not taken it yet

        var progress = task.StopForCrash(); // the worker actor crashes: its report names run 1
        var settled = pool.Crashed("a", progress.Sequence, 0, 0);

        Assert.Equal(1, progress.Sequence);
        Assert.Equal([2, 3], settled.Items);
        Assert.Equal((0, 0, 0), (settled.Completed, settled.Failed, settled.Lost));
        Assert.False(pool.Crashed("a", progress.Sequence, 0, 0).Settles, "the run goes back once");
    }

    [Fact]
    public void A_crash_report_of_an_incarnation_that_held_nothing_settles_nothing()
    {
        var pool = PoolOf(32, "a");

        Assert.False(pool.Crashed("a", -1, 0, 0).Settles);
        Assert.False(pool.Crashed("unknown", 1, 0, 0).Settles);
    }

    [Fact]
    public void A_worker_gone_with_a_run_in_hand_hands_the_whole_run_back()
    {
        var pool = PoolOf(32, "a", "b");
        pool.MarkIdle("a");
        GiveNext(pool, 5, 6);

        Assert.True(pool.Remove("a", out var held));
        Assert.True(pool.Remove("b", out var nothing));
        Assert.False(pool.Remove("a", out _));

        Assert.Equal([5, 6], held.Items);
        Assert.Equal((0, 0), (held.Completed, held.Lost));
        Assert.False(nothing.Settles);
        Assert.Equal((0, 0), (pool.Count, pool.ActiveCount));
    }

    [Fact]
    public void Only_workers_holding_items_are_busy()
    {
        var pool = PoolOf(32, "a", "b");
        pool.MarkIdle("b");
        GiveNext(pool, 1);

        Assert.Equal(["b"], pool.Busy());
    }
}
