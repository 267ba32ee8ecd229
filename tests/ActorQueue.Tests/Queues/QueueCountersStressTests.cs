using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// The counter mirror the router publishes for the facade's synchronous reads, driven directly from two threads (no
/// actors): a test thread takes credited puts in as the router does, the other puts and reads as the facade does.
/// </summary>
[Collection(ChannelStress.Name)]
public class QueueCountersStressTests
{
    [Fact]
    public void Size_and_enqueued_read_right_after_a_put_returns_count_its_item_while_the_router_takes_it_in()
    {
        const int items = 2_000_000;
        var counters = new QueueCounters();
        var ledger = new QueueLedger<int>(items, new("queue", "mirror"));
        var inbox = new PutInbox<int>(QueueParts.Telemetry());
        var admission = new PutAdmission<int>(items, ledger, inbox, new ManualTimers(), QueueParts.Telemetry(),
            () => counters.Publish(QueueStatus.Processing, ledger.Size, 0, ledger.Metrics));
        admission.GrantFreeSpace();
        var abandoned = false;
        var routerThread = new Thread(() =>
        {
            while (ledger.Size < items && !Volatile.Read(ref abandoned))
            {
                admission.TakeInbox();
            }
        }) { IsBackground = true };
        routerThread.Start();

        var router = new MailboxRef("router");
        var jitter = new Random(13);
        var missed = 0;
        string? firstMiss = null;
        try
        {
            for (var i = 1; i <= items; i++)
            {
                Assert.True(inbox.TryPut(i, router));
                Thread.SpinWait(jitter.Next(8)); // the read comes at any point of the router's taking the item in
                var size = counters.SizeWith(inbox);
                var enqueued = counters.MetricsWith(inbox).Enqueued;
                if (size < i || enqueued < i)
                {
                    missed++;
                    firstMiss ??= $"size {size} and enqueued {enqueued} after put {i} returned";
                }
            }
        }
        finally
        {
            Volatile.Write(ref abandoned, true);
            routerThread.Join();
        }

        Assert.True(missed == 0, $"{missed} reads missed accepted items; first: {firstMiss}");
        Assert.Equal((items, (long)items), (counters.SizeWith(inbox), counters.MetricsWith(inbox).Enqueued));
    }
}
