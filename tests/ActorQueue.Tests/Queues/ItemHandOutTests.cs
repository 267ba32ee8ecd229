using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>How items leave the buffer, without an actor: to getters first, then to free workers as runs.</summary>
public class ItemHandOutTests
{
    [Fact]
    public async Task A_waiting_getter_is_served_before_a_free_worker_and_finds_its_item_counted()
    {
        var setup = new Setup(1, 2);
        setup.Pool.MarkIdle("a");
        var get = new GetRequest<int>(ActorRefs.Nobody);
        setup.HandOut.AddGetter(get);
        setup.OnPublish = () => setup.Seen.Add($"in flight {setup.Ledger.Metrics.InFlight}, answered {get.Completion.Task.IsCompleted}");

        Assert.True(setup.HandOut.TryHandOutOne());

        Assert.Equal(["in flight 1, answered False"], setup.Seen);
        Assert.Equal(1, await get.Completion.Task.WaitAsync(TimeSpan.Zero)); // answered already
        Assert.Equal(1, setup.Ledger.Size);
        Assert.True(setup.Pool.HasIdleWorker(), "the worker still waits");
    }

    [Fact]
    public void An_item_whose_getter_has_gone_stays_at_the_head()
    {
        var setup = new Setup(1, 2);
        var get = new GetRequest<int>(ActorRefs.Nobody);
        setup.HandOut.AddGetter(get);
        setup.OnPublish = () => get.Cancel(CancellationToken.None); // the caller cancels just then

        setup.HandOut.TryHandOutOne();

        Assert.Equal((2, 0L), (setup.Ledger.Size, setup.Ledger.Metrics.InFlight));
        Assert.Equal([1, 2], setup.Ledger.DrainAll());
        Assert.False(setup.HandOut.AddGetter(get), "a withdrawn getter does not wait");
    }

    [Fact]
    public void A_free_worker_takes_its_share_of_the_backlog_as_one_run_sent_to_its_actor()
    {
        var setup = new Setup(1, 2, 3, 4, 5);
        setup.Pool.Add("b");
        setup.Pool.MarkIdle("a");

        Assert.True(setup.HandOut.TryHandOutOne());
        Assert.False(setup.HandOut.TryHandOutOne(), "no other worker is free");

        var (worker, run) = Assert.Single(setup.Sent);
        Assert.Equal("a", worker);
        Assert.Equal([1, 2], run.Items); // 5 queued among 2 workers
        Assert.Equal((3, 2L), (setup.Ledger.Size, setup.Ledger.Metrics.InFlight));
    }

    [Fact]
    public void Nothing_is_handed_out_from_an_empty_buffer()
    {
        var setup = new Setup();
        setup.Pool.MarkIdle("a");

        Assert.False(setup.HandOut.TryHandOutOne());
        Assert.True(setup.HandOut.AnyTaker);
    }

    [Fact]
    public void A_report_settles_its_run_and_the_next_run_goes_straight_to_the_waiting_task()
    {
        var setup = new Setup(1, 2, 3);
        var pool = new WorkerPool<string, int>(workerBatch: 1, StringComparer.Ordinal);
        var handOut = new ItemHandOut<string, int>(setup.Ledger, pool, () => { }, (worker, run) => setup.Sent.Add((worker, run)));
        pool.Add("a");
        pool.MarkIdle("a");
        handOut.TryHandOutOne();
        var task = setup.Sent[0].Run;
        task.OpenForHandOver();

        Assert.True(handOut.Finished("a", new ItemsFinished(1, 1, 1), out var stop));
        Assert.False(handOut.Finished("a", new ItemsFinished(1, 1, 1), out _), "a run is settled once");
        Assert.True(handOut.TryHandOutOne());

        Assert.False(stop);
        Assert.Single(setup.Sent);
        Assert.True(task.NextAsync().IsCompletedSuccessfully);
        Assert.Equal([2], task.Items);
        Assert.Equal(new QueueMetrics(3, 1, 1, 0) { InFlight = 1 }, setup.Ledger.Metrics);
    }

    [Fact]
    public void A_crash_settles_the_run_with_the_item_in_hand_lost_and_a_gone_worker_hands_back_the_rest()
    {
        var setup = new Setup(1, 2, 3, 4);
        setup.Pool.MarkIdle("a");
        setup.HandOut.TryHandOutOne(); // one worker: it takes 4 of 4 (at most the batch of 32)

        var crashed = setup.HandOut.Crashed("a", new WorkerCrashed(new InvalidOperationException(), 1, 1, 0));

        Assert.Equal(2, crashed.LostItem);
        Assert.Equal(new QueueMetrics(4, 2, 1, 0), setup.Ledger.Metrics);
        Assert.Equal(2, setup.Ledger.Size);
        Assert.True(setup.HandOut.Gone("a"));
        Assert.False(setup.HandOut.Gone("a"));
    }

    /// <summary>
    /// The router stops with a run still held (the actor system terminating; the worker's report went to dead letters
    /// with it): what the task had finished counts as processed, once, and the rest goes back to the head, for the
    /// router to discard with the items queued.
    /// </summary>
    [Fact]
    public void An_abandoned_run_counts_what_its_task_finished_and_puts_the_rest_back_at_the_head()
    {
        var setup = new Setup(1, 2, 3, 4, 5);
        setup.Pool.MarkIdle("a");
        setup.HandOut.TryHandOutOne(); // one worker: it takes 5 of 5
        setup.Sent[0].Run.Progress.Report(2, 1); // the task finished items 1 and 2 (one failed), and had 3 in hand

        setup.HandOut.AbandonRuns();
        setup.HandOut.AbandonRuns();

        Assert.Equal(new QueueMetrics(5, 2, 1, 0), setup.Ledger.Metrics);
        Assert.Equal([3, 4, 5], setup.Ledger.DrainAll());
    }

    [Fact]
    public void Refused_getters_fail_with_the_reason_given()
    {
        var setup = new Setup();
        var get = new GetRequest<int>(ActorRefs.Nobody);
        setup.HandOut.AddGetter(get);
        var refusal = new QueueStateException("stopping", QueueStatus.Stopping);

        setup.HandOut.RefuseGetters(refusal);

        Assert.Same(refusal, get.Completion.Task.Exception!.InnerException);
        Assert.False(setup.HandOut.AnyTaker);
    }

    /// <summary>A ledger holding <c>items</c>, a pool with worker "a", and a hand-out that records the runs it sends.</summary>
    private sealed class Setup
    {
        public Setup(params int[] items)
        {
            Ledger = new QueueLedger<int>(16, new("queue", "hand-out"));
            foreach (var item in items)
            {
                Ledger.Add(item);
            }

            Pool.Add("a");
            HandOut = new ItemHandOut<string, int>(Ledger, Pool, () => OnPublish?.Invoke(), (worker, run) => Sent.Add((worker, run)));
        }

        public QueueLedger<int> Ledger { get; }

        public WorkerPool<string, int> Pool { get; } = new(workerBatch: 32, StringComparer.Ordinal);

        public ItemHandOut<string, int> HandOut { get; }

        public List<(string Worker, WorkerRun<int> Run)> Sent { get; } = [];

        public Action? OnPublish { get; set; }

        public List<string> Seen { get; } = [];
    }
}
