using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>The router's buffer and counts, without an actor: every change keeps <c>Enqueued == Processed + Drained + Size + InFlight</c>.</summary>
public class QueueLedgerTests
{
    private static QueueLedger<int> LedgerWith(params int[] items)
    {
        var ledger = new QueueLedger<int>(16, new("queue", "ledger"));
        foreach (var item in items)
        {
            ledger.Add(item);
        }

        return ledger;
    }

    private static List<int> Queued(QueueLedger<int> ledger) => [.. ledger.TakeRun(ledger.Size)];

    [Fact]
    public void Every_change_keeps_the_counts_balanced()
    {
        var ledger = LedgerWith(1, 2, 3, 4, 5, 6);
        var steps = new List<Action>
        {
            () => ledger.Withdraw(),
            () => ledger.TakeForGetter(out _),
            () => ledger.ReturnFromGetter(ledger.TakeForGetter(out var trace), trace),
            () => ledger.SettleRun(ledger.TakeRun(3), completed: 1, failed: 1, lost: 1),
            () => ledger.GetterDone(),
            () => ledger.GetterDone(),
            () => ledger.CountBackpressure(),
            () => ledger.DrainAll(),
        };

        foreach (var step in steps)
        {
            step();
            Assert.Null(ledger.BrokenInvariant());
        }

        Assert.Equal(new QueueMetrics(5, 3, 2, 1) { Drained = 2, InFlight = 0 }, ledger.Metrics);
    }

    [Fact]
    public void A_run_that_ends_early_puts_its_unfinished_items_back_at_the_head_in_order()
    {
        var ledger = LedgerWith(1, 2, 3, 4, 5);
        var run = ledger.TakeRun(3);
        Assert.Equal((2, 3), (ledger.Size, ledger.Unfinished - ledger.Size));

        ledger.SettleRun(run, completed: 1, failed: 0, lost: 0);

        Assert.Equal(new QueueMetrics(5, 1, 0, 0) { InFlight = 0 }, ledger.Metrics);
        Assert.Equal([2, 3, 4, 5], Queued(ledger));
    }

    [Fact]
    public void An_item_lost_to_a_crash_counts_as_finished_with_an_error_and_the_rest_go_back()
    {
        var ledger = LedgerWith(1, 2, 3, 4);
        var run = ledger.TakeRun(4);

        ledger.SettleRun(new RunSettlement<int>(run, Completed: 1, Failed: 0, Lost: 1));

        Assert.Equal(new QueueMetrics(4, 2, 1, 0), ledger.Metrics);
        Assert.Equal([3, 4], Queued(ledger));
    }

    [Fact]
    public void A_withdrawn_put_leaves_no_count_and_no_item_behind()
    {
        var ledger = LedgerWith(1);
        ledger.Add(2);

        ledger.Withdraw();

        Assert.Equal(new QueueMetrics(1, 0, 0, 0), ledger.Metrics);
        Assert.Equal([1], Queued(ledger));
    }

    [Fact]
    public void An_item_a_cancelled_getter_never_took_goes_back_to_the_head()
    {
        var ledger = LedgerWith(1, 2);

        ledger.ReturnFromGetter(ledger.TakeForGetter(out var trace), trace);

        Assert.Equal((2, 0L), (ledger.Size, ledger.Metrics.InFlight));
        Assert.Equal([1, 2], Queued(ledger));
    }

    [Fact]
    public void Task_done_with_no_item_taken_by_a_getter_changes_nothing()
    {
        var ledger = LedgerWith(1);

        Assert.False(ledger.GetterDone());
        Assert.Equal(new QueueMetrics(1, 0, 0, 0), ledger.Metrics);
        Assert.Null(ledger.BrokenInvariant());
    }

    [Fact]
    public void A_drain_hands_back_every_queued_item_oldest_first_and_counts_them_drained()
    {
        var ledger = LedgerWith(1, 2, 3);
        var inFlight = ledger.TakeRun(1);

        Assert.Equal([2, 3], ledger.DrainAll());
        Assert.Equal(new QueueMetrics(3, 0, 0, 0) { Drained = 2, InFlight = 1 }, ledger.Metrics);
        Assert.Equal(1, ledger.Unfinished);
        Assert.Single(inFlight);
    }

    [Fact]
    public void The_check_names_what_is_wrong_when_a_run_is_settled_twice()
    {
        var ledger = LedgerWith(1, 2);
        var run = ledger.TakeRun(2);
        ledger.SettleRun(run, completed: 2, failed: 0, lost: 0);

        // What the run sequence numbers exist to prevent. A debug build asserts at once (the test host turns a
        // failed Debug.Assert into an exception); a release build leaves the check to callers such as this test.
#if DEBUG
        Assert.ThrowsAny<Exception>(() => ledger.SettleRun(run, completed: 2, failed: 0, lost: 0));
#else
        ledger.SettleRun(run, completed: 2, failed: 0, lost: 0);
#endif

        Assert.Equal("negative in flight: -2 with workers, 0 with getters", ledger.BrokenInvariant());
    }
}
