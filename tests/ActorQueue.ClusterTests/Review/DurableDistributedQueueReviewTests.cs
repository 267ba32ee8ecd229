using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the durable distributed work queue (<c>DistributedRouterActor.Durable.cs</c>,
/// <c>DistributedQueueJournalActor</c>): the router is driven at the protocol level by probes standing for its producers
/// and workers, on a one-node cluster whose journal (<see cref="ReviewJournal"/>) a test can gate, reject writes of, and
/// seed with records.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class DurableDistributedQueueReviewTests : IAsyncLifetime
{
    private const string JournalId = "actorqueue.test.review-journal";

    private const string SnapshotId = "akka.persistence.snapshot-store.inmem";

    private const string JournalConfig = """
        actorqueue.test.review-journal {
          class = "ActorQueue.Tests.Review.ReviewJournal, ActorQueue.ClusterTests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """;

    private static readonly TimeSpan Step = TimeSpan.FromSeconds(10);

    private static readonly QueueDurability Durability = new() { JournalPluginId = JournalId, SnapshotPluginId = SnapshotId };

    private static readonly DistributedQueueStorage Storage = new(Durability, JournalId, SnapshotId);

    private ClusterNodes _cluster = null!;

    private ActorSystem Node => _cluster.Nodes[0];

    private Akka.TestKit.Xunit2.TestKit Kit { get; set; } = null!;

    public async Task InitializeAsync()
    {
        ReviewJournal.Reset();
        _cluster = await ClusterNodes.StartAsync(1, JournalConfig, Durability);
        Kit = new Akka.TestKit.Xunit2.TestKit(Node);
    }

    public async Task DisposeAsync()
    {
        ReviewJournal.Reset();
        await _cluster.DisposeAsync();
    }

    /// FINDING. A durable router refuses (<c>EnqueueFull</c>) a put of an item it has already taken and is writing, so
    /// the caller is told "refused" for an item that is then written, queued, acknowledged (too late: the producer dropped
    /// it) and run. The memory router recognises a put it knows (<c>Known</c>: <c>_unfinished</c>) and acknowledges it
    /// again; the durable router keeps its items in <c>_stored</c>, which only <c>Store</c> consults — after the capacity
    /// check in <c>Enqueue</c>. So a put sent again while the queue is full (the producer's <c>PostRestart</c> re-sends
    /// every put not yet acknowledged, and with a durable router the acknowledgement waits for the write) meets the bound:
    /// with a zero timeout it is refused at once (with a finite one, at its timeout). <c>DistributedProducerActor.HandleFull</c>
    /// then removes the item and completes <c>SubmitAsync</c> with <c>null</c>.
    /// Reproduction: capacity 1, journal writes gated; the producer puts item 1 (timeout 0), the write is held; the same
    /// put arrives again (as after the producer's restart). Expected: no <c>EnqueueFull</c> for item 1 — it is known, and
    /// acknowledged once written. Observed: <c>EnqueueFull(1)</c>, then <c>EnqueueAccepted([1])</c> and the item queued.
    /// The same gap with a waiting re-sent put (infinite timeout): if the stored copy runs and finishes while the re-sent
    /// put waits for space, the put is later let in as a new item (its key was forgotten) and the item runs twice.
    /// Defect in <c>DistributedRouterActor.Enqueue</c>/<c>Known</c> (durable keys not consulted) and <c>Store</c>.
    [Fact]
    public async Task A_put_sent_again_for_an_item_being_written_is_not_refused_while_the_queue_is_full()
    {
        ReviewJournal.CloseGate();
        var router = StartRouter("resent", capacity: 1);
        var producer = Kit.CreateTestProbe();
        var epoch = await AnnounceProducerAsync(router, producer, capacity: 1);

        router.Tell(new RemoteEnqueue(epoch, [1], ["\"one\""], 0, 1), producer.Ref);
        await ReviewJournal.WriteArrived.Task.WaitAsync(Step);
        router.Tell(new RemoteEnqueue(epoch, [1], ["\"one\""], 0, 1), producer.Ref); // the same put again (producer restarted)
        router.Tell(GetQueueStatus.Instance, producer.Ref); // handled after it: an answer to it would come first

        var first = await producer.ReceiveOneAsync(Step);
        Assert.False(first is EnqueueFull, "the router refused a put of an item it is writing and will run: " + first);
        Assert.IsType<DistributedQueueStatus>(first);
        ReviewJournal.OpenGate();
        var accepted = await producer.ExpectMsgAsync<EnqueueAccepted>(Step);
        Assert.Equal(new[] { 1L }, accepted.ItemIds);
    }

    /// FINDING. An item whose stored payload cannot be read back wedges the durable queue for good, with the journal in
    /// a hot restart loop. The journal decodes every unfinished item (<c>StoredClusterItem.Decode</c>) in its
    /// <c>RecoveryCompleted</c> handler (<c>DistributedQueueJournalActor.Unfinished</c>); one record that does not decode
    /// throws there. That is not a recovery failure (<c>OnRecoveryFailure</c> is not called, the journal does not stop,
    /// so <c>JournalStopped</c> never fires): it is an ordinary actor failure, the router's default supervision restarts
    /// the journal, which replays, throws again, and so on — about 38,000 restarts (each logging the error) in the 10 s
    /// of this test. The router stays in <c>Recovering</c>, stashing everything, never answering a put, a status request or
    /// a worker (a put's timeout is kept by the router, so even <c>SubmitAsync</c> with a finite timeout waits for ever),
    /// and the readable items in the journal never run. The local durable queue sets such an item aside
    /// (<c>DurableBook.TryTake</c>'s <c>unreadable</c>); this one neither skips nor reports it.
    /// Reproduction: the queue's journal holds one accepted item whose payload is three garbage bytes and one good item;
    /// a router starts and is asked for its status (the asker also watches it). Expected: it serves (the bad item reported
    /// or dead-lettered with its reason, the good one queued). Observed: no answer and no termination within 10 s; the log
    /// shows the journal failing "A distributed queue's stored item is cut short" in a tight loop.
    [Fact]
    public async Task An_unreadable_stored_item_does_not_stop_the_router_and_the_good_items_still_run()
    {
        const string name = "unreadable";
        await SeedAsync(name,
            DurableCodec.Encode(new ItemAccepted(1, 0, 0, [1, 2, 3])),
            DurableCodec.Encode(new ItemAccepted(2, 0, 0, StoredClusterItem.Encode(new StoredClusterItem("akka://nowhere@127.0.0.1:1/system/p#1", 7, "\"good\"", null)))));

        var router = StartRouter(name, capacity: 5);
        var answer = await AskStatusWatchingAsync(router);
        Assert.NotNull(answer); // null: neither an answer nor a termination (the journal restarts in a loop)
        Assert.False(answer is Terminated, "the router stopped on an unreadable stored item instead of serving");
        var status = Assert.IsType<DistributedQueueStatus>(answer);
        Assert.True(status.Queued >= 1, "the readable item was not recovered");
        Assert.Equal(1, status.Unreadable); // set aside and counted

        // Set aside for good: its dead-lettering is written, and the next router reads back the good item only.
        await Poll.UntilAsync(() => ReviewJournal.Events >= 3, Step, "the unreadable item's dead-lettering is written"); // 2 seeded + 1
        await StopAsync(router);
        var next = StartRouter(name, capacity: 5);
        var nextAsker = Kit.CreateTestProbe();
        next.Tell(GetQueueStatus.Instance, nextAsker.Ref);
        var again = await nextAsker.ExpectMsgAsync<DistributedQueueStatus>(Step);
        Assert.Equal(0, again.Unreadable);
        Assert.Equal(1, again.Queued);
    }

    /// FINDING. A recovered item forgets how often it was handed out, so <c>max-deliveries</c> and
    /// <c>ItemResult.Deliveries</c>/<c>Metrics.Redelivered</c> are wrong after a router restart or hand-over. The router
    /// journals every hand-out (<c>Started</c> → <c>JournalStarted</c>, "so a recovered item knows its delivery count";
    /// ARCHITECTURE: "delivery = hand-outs + 1"), but the journal applies it with <c>DurableBook.Started</c>, which is a
    /// no-op (the local durable queue counts only failed tries), so <c>RecoveredItem.Attempts</c> is always 0 and every
    /// recovered item is dispatched with <c>Deliveries = 1</c> — each hand-out write is wasted, an item whose worker
    /// losses span router restarts/hand-overs starts counting afresh each time (so <c>max-deliveries</c> is not reached),
    /// and its result says it ran once (<c>Metrics.Redelivered</c> not counted).
    /// Reproduction: an item is dispatched to a worker (its hand-out written), the router stops, a new router reads the
    /// journal back and dispatches the item to a free worker. Expected: <c>Deliveries == 2</c>. Observed: 1.
    /// Defect in <c>DistributedQueueJournalActor</c> (<c>JournalStarted</c> applied with <c>_book.Started</c>) / <c>DurableBook.Started</c>.
    [Fact]
    public async Task An_item_handed_out_before_the_router_stopped_is_recovered_with_its_delivery_count()
    {
        const string name = "handed-out";
        var first = StartRouter(name, capacity: 5);
        var producer = Kit.CreateTestProbe();
        var epoch = await AnnounceProducerAsync(first, producer, capacity: 5);
        first.Tell(new RemoteEnqueue(epoch, [1], ["\"one\""], -1, 5), producer.Ref);
        await producer.ExpectMsgAsync<EnqueueAccepted>(Step);

        var worker = Kit.CreateTestProbe();
        await AnnounceWorkerAsync(first, worker);
        Assert.Equal(1, (await worker.ExpectMsgAsync<DispatchItem>(Step)).Envelope.Deliveries);
        await Poll.UntilAsync(() => ReviewJournal.Events >= 2, Step, "the hand-out is written"); // accept + hand-out
        await StopAsync(first);

        var second = StartRouter(name, capacity: 5);
        await AnnounceProducerAsync(second, producer, capacity: 5); // a recovered item waits for its producer (round 53)
        var nextWorker = Kit.CreateTestProbe();
        await AnnounceWorkerAsync(second, nextWorker);
        var redelivered = await nextWorker.ExpectMsgAsync<DispatchItem>(Step);
        Assert.Equal(1L, redelivered.Envelope.ItemId);
        Assert.Equal(2, redelivered.Envelope.Deliveries);
    }

    /// FINDING. A put whose journal write is rejected is never answered, and takes the whole router down with it, again and
    /// again. <c>DistributedQueueJournalActor.OnPersistRejected</c> stops the journal, so the router stops
    /// (<c>JournalStopped</c>) without telling the producer anything; the producer re-announces the item to the next
    /// router, whose journal rejects it again (a rejection is about the event — too large, not serializable — not a
    /// passing fault), and so on for ever: the caller of that put waits for ever, and each stop re-runs every other item
    /// that was at a worker (the recovered copies run again). Akka's contract for a rejection is that the event was not
    /// stored and the actor may go on; the local durable queue does exactly that (<c>DurableRouterActor.Rejected</c>: the
    /// put's caller hears a <c>QueueStorageException</c>, the queue goes on). Here the put should be refused/failed with the
    /// reason and the router keep serving. Defect in <c>DistributedQueueJournalActor.OnPersistRejected</c> (stops instead of
    /// answering the router) and the router, which has no way to fail a put whose write was refused.
    /// Reproduction: the journal rejects events carrying "poison"; a producer puts such an item. Expected: the producer is
    /// told (<c>EnqueueFull</c> or a failed <c>ItemDone</c>) and the router still serves. Observed: the router stops unanswered.
    [Fact]
    public async Task A_put_whose_write_the_journal_rejects_is_answered_and_does_not_stop_the_router()
    {
        ReviewJournal.RejectWhen = bytes => bytes.AsSpan().IndexOf("poison"u8) >= 0;
        var router = StartRouter("rejected", capacity: 5);
        var producer = Kit.CreateTestProbe();
        var epoch = await AnnounceProducerAsync(router, producer, capacity: 5);
        producer.Watch(router);

        router.Tell(new RemoteEnqueue(epoch, [1], ["\"poison\""], -1, 5), producer.Ref);

        var answer = await producer.ReceiveOneAsync(Step);
        Assert.False(answer is Terminated, "the router stopped and the producer was never told about its put");
        Assert.True(answer is EnqueueFull or ItemDone { Succeeded: false }, "unexpected answer " + answer);
        if (answer is ItemDone done)
        {
            Assert.Contains("The review journal rejects this event", done.Error); // the storage error's reason
        }

        // The router goes on: the next put is written and acknowledged, and the refused one is counted.
        router.Tell(new RemoteEnqueue(epoch, [2], ["\"fine\""], -1, 5), producer.Ref);
        Assert.Equal(new[] { 2L }, (await producer.ExpectMsgAsync<EnqueueAccepted>(Step)).ItemIds);
        router.Tell(GetQueueStatus.Instance, producer.Ref);
        Assert.Equal(1, (await producer.ExpectMsgAsync<DistributedQueueStatus>(Step)).RejectedWrites);
    }

    /// <summary>
    /// A refused acceptance written together with others (they gathered while a write was held): only it is refused, its
    /// write-mates are acknowledged. A write of the gathered events as one atomic write (<c>PersistAllAsync</c>) refused
    /// them all with its reason (found in review of the journal's own outbox, before it landed).
    /// </summary>
    [Fact]
    public async Task A_rejected_put_written_together_with_others_refuses_only_itself()
    {
        var router = StartRouter("rejected-together", capacity: 5);
        var producer = Kit.CreateTestProbe();
        var epoch = await AnnounceProducerAsync(router, producer, capacity: 5);
        ReviewJournal.CloseGate();
        router.Tell(new RemoteEnqueue(epoch, [1], ["\"first\""], -1, 5), producer.Ref);
        await ReviewJournal.WriteArrived.Task.WaitAsync(Step); // the first put's write is held: the next two gather
        ReviewJournal.RejectWhen = bytes => bytes.AsSpan().IndexOf("poison"u8) >= 0;
        router.Tell(new RemoteEnqueue(epoch, [2, 3], ["\"poison\"", "\"fine\""], -1, 5), producer.Ref);
        router.Tell(GetQueueStatus.Instance, producer.Ref); // after the two puts reached the journal's outbox
        await producer.FishForMessageAsync(message => message is DistributedQueueStatus, Step);

        ReviewJournal.OpenGate();

        var accepted = new List<long>();
        object? refusal = null;
        await Poll.UntilAsync(() =>
        {
            while (producer.HasMessages)
            {
                var message = producer.ReceiveOne(TimeSpan.Zero);
                if (message is EnqueueAccepted ok)
                {
                    accepted.AddRange(ok.ItemIds);
                }
                else if (message is EnqueueFull or ItemDone { Succeeded: false })
                {
                    refusal = message;
                }
            }

            return accepted.Count == 2 && refusal is not null;
        }, Step, () => $"accepted {string.Join(",", accepted)}; refusal {refusal}");
        Assert.Equal(new long[] { 1, 3 }, accepted.Order());
    }

    /// FINDING. An item reported failed after <c>max-deliveries</c> losses is told "failed" before that end is written,
    /// so a router lost in between (its node crashes, its journal's write fails) leaves the item unfinished in the journal
    /// and the next router runs it again — after its producer was told it failed. <c>HandleTerminated</c> calls
    /// <c>Finished</c> (which only <c>Tell</c>s <c>JournalFinished</c> to the journal, fire-and-forget) and sends the
    /// failed <c>ItemDone</c> at once; puts, by contrast, are acknowledged only in the write's callback. The documented
    /// at-least-once windows (an item running when the router's node died, a result on its way) do not cover an item the
    /// router itself declared failed: the caller's <c>ItemResult</c> says it failed, yet its handler runs afterwards.
    /// Reproduction: <c>max-deliveries = 1</c>; an accepted item is at a worker that stops; the router tells the producer
    /// it failed while the journal write of its end is held (a crash before the write lands); the router stops, a new one
    /// reads the journal back and gets a free worker. Expected: the item never runs again (the failure written before it is
    /// reported). Observed: the new router dispatches it.
    /// Mend: the test first expected the failure while the end's write was held — the very ordering at fault. Now, while
    /// it is held, the producer is not told (a status request sent after the write reached the journal is answered
    /// first); once it lands the failure is reported, and a new router does not run the item.
    /// Defect in <c>DistributedRouterActor.HandleTerminated</c>/<c>Finished</c> (report not ordered after the write).
    [Fact]
    public async Task An_item_reported_failed_after_max_deliveries_never_runs_again_after_the_router_is_lost()
    {
        const string name = "failed-then-run";
        var first = StartRouter(name, capacity: 5, maxDeliveries: 1);
        var producer = Kit.CreateTestProbe();
        var epoch = await AnnounceProducerAsync(first, producer, capacity: 5);
        first.Tell(new RemoteEnqueue(epoch, [1], ["\"one\""], -1, 5), producer.Ref);
        await producer.ExpectMsgAsync<EnqueueAccepted>(Step);
        var worker = Kit.CreateTestProbe();
        await AnnounceWorkerAsync(first, worker);
        await worker.ExpectMsgAsync<DispatchItem>(Step);
        await Poll.UntilAsync(() => ReviewJournal.Events >= 2, Step, "the item's acceptance and hand-out are written");

        ReviewJournal.CloseGate(); // the end's write is held: a router lost now would leave the item unfinished
        Node.Stop(worker.Ref);
        await ReviewJournal.WriteArrived.Task.WaitAsync(Step); // the router took the loss and is writing the item's end
        first.Tell(GetQueueStatus.Instance, producer.Ref);
        var beforeWritten = await producer.ReceiveOneAsync(Step);
        Assert.False(beforeWritten is ItemDone, "the producer was told the item failed before its end was written: " + beforeWritten);
        Assert.IsType<DistributedQueueStatus>(beforeWritten);

        ReviewJournal.OpenGate();
        var done = await producer.ExpectMsgAsync<ItemDone>(Step);
        Assert.False(done.Succeeded); // the caller is told, once the end is written: failed (lost with max-deliveries workers)
        await StopAsync(first);

        var second = StartRouter(name, capacity: 5, maxDeliveries: 1);
        await AnnounceProducerAsync(second, producer, capacity: 5); // else a recovered item would wait for it (round 53)
        var nextWorker = Kit.CreateTestProbe();
        await AnnounceWorkerAsync(second, nextWorker);
        second.Tell(GetQueueStatus.Instance, nextWorker.Ref); // after the recovery and the announcement
        var next = await nextWorker.ReceiveOneAsync(Step);
        Assert.False(next is DispatchItem, "an item its producer was told had failed was dispatched again: " + next);
    }

    /// FINDING. A journal holding two unfinished items with the same producer and producer id makes recovery throw, and
    /// the router restarts for ever without serving. <c>HandleRecovered</c> calls <c>Remember</c>, whose
    /// <c>_stored.Add(key, id)</c> throws <c>ArgumentException</c> on the second; the router's supervisor restarts it, the
    /// new instance reads the same journal and throws again. Such a journal is reachable: <c>Finished</c> forgets an item's
    /// key before its <c>JournalFinished</c> is written, and the same item re-announced meanwhile (documented: "an item that
    /// finishes while its producer re-announces it ... is queued again") is written under a new journal id; the writes are
    /// pipelined (<c>PersistAsync</c>), so when the end's write fails (the journal stops, as designed) the later acceptance
    /// may already be stored. One stale record then wedges the whole queue instead of costing, at worst, one extra run.
    /// Reproduction: the journal holds item (p, 7) accepted under ids 1 and 2, neither finished; a router starts and is
    /// asked for its status. Expected: it serves, with the item queued once. Observed: no answer (restart loop).
    /// Defect in <c>DistributedRouterActor.HandleRecovered</c>/<c>Remember</c>.
    [Fact]
    public async Task A_journal_with_an_item_accepted_twice_is_read_back_and_the_router_serves()
    {
        const string name = "accepted-twice";
        var item = StoredClusterItem.Encode(new StoredClusterItem("akka://nowhere@127.0.0.1:1/system/p#1", 7, "\"seven\"", null));
        await SeedAsync(name, DurableCodec.Encode(new ItemAccepted(1, 0, 0, item)), DurableCodec.Encode(new ItemAccepted(2, 0, 0, item)));

        var answer = await AskStatusWatchingAsync(StartRouter(name, capacity: 5));
        Assert.NotNull(answer); // null: neither an answer nor a termination (the router restarts in a loop)
        var status = Assert.IsType<DistributedQueueStatus>(answer);
        Assert.Equal(1, status.Queued);
        await Poll.UntilAsync(() => ReviewJournal.Events >= 3, Step, "the second record is ended"); // 2 seeded + its end
    }
}
