using System.Diagnostics;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>The producer's trace context stays with its item in the router's buffer, in a run, and back in the buffer.</summary>
public class QueueLedgerTraceTests
{
    private static ActivityContext Context() => new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);

    [Fact]
    public void Each_item_keeps_its_context_through_growth_a_run_and_a_hand_back()
    {
        var ledger = new QueueLedger<int>(4, new("queue", "ledger-trace")); // a buffer of 4 at first
        var contexts = new Dictionary<int, ActivityContext>();
        for (var i = 0; i < 40; i++) // past the buffer's first size, so it grows with its contexts
        {
            var context = i % 3 == 0 ? default : Context();
            contexts[i] = context;
            ledger.Add(i, context);
        }

        var run = ledger.TakeRun(10);
        var traces = ItemTraces.Of(run);
        Assert.NotNull(traces);
        for (var i = 0; i < run.Length; i++)
        {
            Assert.Equal(contexts[run[i]], traces[i]);
        }

        // The first item finished; the other nine go back to the head and must carry their contexts again.
        ledger.SettleRun(run, completed: 1, failed: 0, lost: 0);
        var again = ledger.TakeRun(ledger.Size);
        var againTraces = ItemTraces.Of(again);
        Assert.NotNull(againTraces);
        Assert.Equal(Enumerable.Range(1, 39), again);
        for (var i = 0; i < again.Length; i++)
        {
            Assert.Equal(contexts[again[i]], againTraces[i]);
        }
    }

    [Fact]
    public void A_run_of_untraced_items_carries_no_contexts()
    {
        var ledger = new QueueLedger<int>(16, new("queue", "ledger-untraced"));
        ledger.Add(1);
        ledger.Add(2);

        Assert.Null(ItemTraces.Of(ledger.TakeRun(2)));
    }
}
