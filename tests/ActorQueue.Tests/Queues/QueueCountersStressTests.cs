using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// The counter mirror the router publishes for the facade's synchronous reads, driven directly from several threads
/// (no actors): a test thread takes credited puts in as the router does, another reads as the facade does.
/// </summary>
public class QueueCountersStressTests
{
    [Fact]
    public void Size_and_enqueued_read_by_the_facade_never_miss_an_item_whose_put_has_returned()
    {
        const int items = 200_000;
        var counters = new QueueCounters();
        var ledger = new QueueLedger<int>(items, new("queue", "mirror"));
        var inbox = new PutInbox<int>(QueueParts.Telemetry());
        var admission = new PutAdmission<int>(items, ledger, inbox, new ManualTimers(), QueueParts.Telemetry(),
            () => counters.Publish(QueueStatus.Processing, ledger.Size, 0, ledger.Metrics));
        admission.GrantFreeSpace();
        var returned = 0;
        var refused = 0;
        var producer = new Thread(() =>
        {
            var router = new MailboxRef("router");
            for (var i = 0; i < items; i++)
            {
                if (!inbox.TryPut(i, router))
                {
                    refused++;
                    return;
                }

                Volatile.Write(ref returned, i + 1);
            }
        }) { IsBackground = true };
        var router = new Thread(() =>
        {
            while (ledger.Size < items && Volatile.Read(ref refused) == 0)
            {
                admission.TakeInbox();
            }
        }) { IsBackground = true };
        producer.Start();
        router.Start();

        var missed = 0;
        string? firstMiss = null;
        while (router.IsAlive)
        {
            var before = Volatile.Read(ref returned);
            var size = counters.SizeWith(inbox);
            var enqueued = counters.MetricsWith(inbox).Enqueued;
            if (size < before || enqueued < before)
            {
                missed++;
                firstMiss ??= $"size {size} and enqueued {enqueued} after {before} puts had returned";
            }
        }

        producer.Join();
        Assert.Equal(0, refused);
        Assert.True(missed == 0, $"{missed} reads missed accepted items; first: {firstMiss}");
        Assert.Equal((items, (long)items), (counters.SizeWith(inbox), counters.MetricsWith(inbox).Enqueued));
    }
}
