using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>How items get into the queue on the router's side, without an actor: credits, the inbox, waiting puts and batches.</summary>
public class PutAdmissionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_put_with_space_is_counted_and_published_before_it_is_answered()
    {
        var setup = new Setup(capacity: 2);
        var put = setup.NewPut(1, Wait);
        setup.OnPublish = () => setup.Seen.Add($"size {setup.Ledger.Size}, answered {put.Completion.Task.IsCompleted}");

        Assert.True(setup.Admission.Offer(put));

        Assert.Equal(["size 1, answered False"], setup.Seen);
        Assert.True(await AnswerOf(put));
        Assert.Equal(new QueueMetrics(1, 0, 0, 0), setup.Ledger.Metrics);
    }

    [Fact]
    public void A_put_withdrawn_as_it_is_accepted_is_taken_back_out()
    {
        var setup = new Setup(capacity: 2);
        var put = setup.NewPut(1, Wait);
        setup.OnPublish = () => put.Cancel(CancellationToken.None); // the caller cancels just then

        setup.Admission.Offer(put);

        Assert.True(put.Completion.Task.IsCanceled);
        Assert.Equal((0, new QueueMetrics(0, 0, 0, 0)), (setup.Ledger.Size, setup.Ledger.Metrics));
    }

    [Fact]
    public async Task A_put_that_finds_no_space_waits_with_a_timer_and_meets_backpressure_when_it_runs_out()
    {
        var setup = new Setup(capacity: 1);
        setup.Admission.Offer(setup.NewPut(1, Wait));
        var waiting = setup.NewPut(2, Wait);

        Assert.False(setup.Admission.Offer(waiting));
        Assert.IsType<PutTimedOut<int>>(setup.Timers.MessageOf(waiting));
        Assert.False(waiting.Completion.Task.IsCompleted);

        setup.Admission.TimedOut(waiting);

        Assert.False(await AnswerOf(waiting));
        Assert.Equal(new QueueMetrics(1, 0, 0, 1), setup.Ledger.Metrics);
        Assert.False(setup.Admission.AnyWaiting);
    }

    [Fact]
    public async Task A_put_that_may_not_wait_meets_backpressure_at_once_and_one_without_limit_waits_without_a_timer()
    {
        var setup = new Setup(capacity: 1);
        setup.Admission.Offer(setup.NewPut(1, Wait));
        var noWait = setup.NewPut(2, TimeSpan.Zero);
        var noLimit = setup.NewPut(3, Timeout.InfiniteTimeSpan);

        setup.Admission.Offer(noWait);
        setup.Admission.Offer(noLimit);

        Assert.False(await AnswerOf(noWait));
        Assert.False(noLimit.Completion.Task.IsCompleted);
        Assert.Empty(setup.Timers.ActiveTimers);
    }

    [Fact]
    public async Task Waiting_puts_are_admitted_oldest_first_as_space_frees_and_a_new_put_queues_behind_them()
    {
        var setup = new Setup(capacity: 1);
        setup.Admission.Offer(setup.NewPut(1, Wait));
        var second = setup.NewPut(2, Wait);
        var third = setup.NewPut(3, Wait);
        setup.Admission.Offer(second);
        setup.Admission.Offer(third);
        setup.FinishOne();
        var late = setup.NewPut(4, Wait);

        Assert.False(setup.Admission.Offer(late), "space is free, but older puts wait for it");
        setup.Admission.AdmitWaiting();

        Assert.True(await AnswerOf(second));
        Assert.False(third.Completion.Task.IsCompleted);
        Assert.Equal([third, late], setup.Timers.ActiveTimers);
    }

    [Fact]
    public void A_withdrawn_put_leaves_the_line_with_its_timer()
    {
        var setup = new Setup(capacity: 1);
        setup.Admission.Offer(setup.NewPut(1, Wait));
        var waiting = setup.NewPut(2, Wait);
        setup.Admission.Offer(waiting);

        setup.Admission.Withdraw(waiting);

        Assert.Empty(setup.Timers.ActiveTimers);
        Assert.False(setup.Admission.AnyWaiting);
    }

    [Fact]
    public void Credits_are_granted_only_while_no_put_waits_and_an_actor_put_takes_unused_ones_back()
    {
        var setup = new Setup(capacity: 2);
        setup.Admission.GrantFreeSpace();
        Assert.Equal(2, setup.Inbox.Reserved);
        var probe = new MailboxRef("requester");

        Assert.True(setup.Admission.Offer(new ActorPut<int>(1, TimeSpan.Zero, probe, correlationId: 7)));
        Assert.Equal(0, setup.Inbox.Reserved);
        Assert.Equal(new QueueProtocol.Accepted(7), Assert.Single(probe.Messages));

        setup.Admission.Offer(new ActorPut<int>(2, Wait, probe, correlationId: 8)); // fills the queue
        setup.Admission.Offer(setup.NewPut(3, Wait));
        setup.FinishOne();
        setup.Admission.GrantFreeSpace();
        Assert.Equal(0, setup.Inbox.Reserved);
    }

    [Fact]
    public void Items_taken_in_from_the_inbox_are_published_before_they_leave_its_count()
    {
        var setup = new Setup(capacity: 4);
        setup.Admission.GrantFreeSpace();
        var router = new MailboxRef("router");
        Assert.True(setup.Inbox.TryPut(1, router));
        Assert.True(setup.Inbox.TryPut(2, router));
        setup.OnPublish = () => setup.Seen.Add($"size {setup.Ledger.Size}, pending {setup.Inbox.Pending}");

        Assert.True(setup.Admission.TakeInbox());

        Assert.Equal(["size 2, pending 2"], setup.Seen);
        Assert.Equal((0, 4, 2L), (setup.Inbox.Pending, setup.Inbox.Reserved + setup.Ledger.Size, setup.Ledger.Metrics.Enqueued));
        Assert.False(setup.Admission.TakeInbox());
    }

    [Fact]
    public void A_batch_is_admitted_in_order_as_space_frees_and_answered_once_all_its_items_are_in()
    {
        var setup = new Setup(capacity: 2);
        var batch = new BatchPut<int>([1, 2, 3]);
        setup.Admission.AddBatch(batch);

        setup.Admission.AdmitWaiting();
        setup.Admission.AnswerAdmittedBatches();
        Assert.Equal((2, false), (batch.Admitted, batch.Completion.Task.IsCompleted));

        setup.FinishOne();
        setup.Admission.AdmitWaiting();
        setup.Admission.AnswerAdmittedBatches();

        Assert.True(batch.Completion.Task.IsCompletedSuccessfully);
        Assert.Equal(new QueueMetrics(3, 1, 0, 0), setup.Ledger.Metrics);
        Assert.Equal([2, 3], setup.Ledger.DrainAll());
    }

    [Fact]
    public void A_stop_refuses_every_waiting_put_and_batch_naming_the_status_and_what_was_accepted()
    {
        var setup = new Setup(capacity: 1);
        setup.Admission.Offer(setup.NewPut(1, Wait));
        var waiting = setup.NewPut(2, Wait);
        var batch = new BatchPut<int>([3, 4]);
        setup.Admission.Offer(waiting);
        setup.Admission.AddBatch(batch);

        setup.Admission.RefuseAll(QueueStatus.Stopping, cancelTimers: true);

        var refused = Assert.IsType<QueueStateException>(waiting.Completion.Task.Exception!.InnerException);
        var batchRefused = Assert.IsType<QueueStateException>(batch.Completion.Task.Exception!.InnerException);
        Assert.Equal((QueueStatus.Stopping, "Cannot put items when queue is stopping"), (refused.Status, refused.Message));
        Assert.Equal("Cannot put items when queue is stopping (0 of the batch's 2 items were accepted)", batchRefused.Message);
        Assert.Empty(setup.Timers.ActiveTimers);
    }

    /// <summary>The put's answer, which must already be there (a put admission answers synchronously).</summary>
    private static Task<bool> AnswerOf(FacadePut<int> put) => put.Completion.Task.WaitAsync(TimeSpan.Zero);

    /// <summary>A ledger, an inbox and admission over them, with a publish that tests can watch.</summary>
    private sealed class Setup
    {
        public Setup(int capacity)
        {
            Ledger = new QueueLedger<int>(capacity, new("queue", "admission"));
            Inbox = new PutInbox<int>(QueueParts.Telemetry());
            Admission = new PutAdmission<int>(capacity, Ledger, Inbox, Timers, QueueParts.Telemetry(), () => OnPublish?.Invoke());
        }

        public QueueLedger<int> Ledger { get; }

        public PutInbox<int> Inbox { get; }

        public ManualTimers Timers { get; } = new();

        public PutAdmission<int> Admission { get; }

        public Action? OnPublish { get; set; }

        public List<string> Seen { get; } = [];

        /// <summary>A facade put that went to the router, as the facade sends it.</summary>
        public FacadePut<int> NewPut(int item, TimeSpan timeout)
        {
            Inbox.Routed();
            return new FacadePut<int>(item, timeout, ActorRefs.Nobody, Inbox);
        }

        /// <summary>A worker takes the oldest item and finishes it: one place frees.</summary>
        public void FinishOne() => Ledger.SettleRun(Ledger.TakeRun(1), completed: 1, failed: 0, lost: 0);
    }
}
