using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The cluster's durable distributed queue's journal (<see cref="DistributedQueueJournalActor"/>) runs its storage
/// operations one at a time (<see cref="StorageTurnReviewTests"/>), as the local durable queue does since 53bb73d
/// (<see cref="DurableThroughputReviewTests"/>). It runs here under a parent of the test's (<see cref="JournalHost"/>,
/// standing for its router): 120 items four at a time, each accepted, handed out and (but the last five) finished, about
/// 360 events; every acceptance is answered, and the journal opened again hands back exactly the items not finished, each
/// handed out once. Failed before: the journal saved a snapshot at the end of the write that made it due and deleted the
/// events and the older snapshots together once it was saved, while Akka sent the next write (the events persisted
/// meanwhile) at once: up to 4 to 6 storage operations of the journal under way at once (2 in the failure theories).
/// </summary>
public sealed class ClusterJournalHousekeepingReviewTests : StorageTurnReviewTests
{
    /// <summary>Items accepted, by ids 1..Items; one more (Items + 1) closes the run.</summary>
    private const int Items = 120;

    /// <summary>Items the test's router keeps written at once: the next is accepted when one is written, as producers put again.</summary>
    private const int Lanes = 4;

    /// <summary>The last items are handed out but never finished: the journal opened again must hand them back.</summary>
    private const int Unfinished = 5;

    private static DistributedQueueStorage Storage =>
        new(new QueueDurability { JournalPluginId = TurnStorage.Journal, SnapshotPluginId = TurnStorage.SnapshotStore, SnapshotEvery = 40 }, TurnStorage.Journal, TurnStorage.SnapshotStore);

    /// <summary>Runs the items through a journal under a <see cref="JournalHost"/>, then stops it once the closing item is written.</summary>
    protected override async Task RunItemsAsync(ActorSystem system, string name)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = system.ActorOf(Props.Create(() => new JournalHost(name, done, null)));
        await Within(done.Task);
        Assert.True(await host.GracefulStop(Dilated(TimeSpan.FromSeconds(10))), "the journal's host did not stop");
    }

    /// <summary>The journal opened again hands back exactly the items not finished (each handed out once) and the closing one.</summary>
    protected override async Task AssertReopensAsync(ActorSystem system, string name)
    {
        var recovered = new TaskCompletionSource<JournalRecovered>(TaskCreationOptions.RunContinuationsAsynchronously);
        system.ActorOf(Props.Create(() => new JournalHost(name, null, recovered)));
        var back = await Within(recovered.Task);

        var expected = Enumerable.Range(Items - Unfinished + 1, Unfinished).Select(id => (Id: (long)id, Attempts: 1)).Append((Items + 1, 0));
        Assert.Equal(expected, back.Items.Select(item => (item.Id, item.Attempts)));
        Assert.Equal(Items + 2, back.NextId);
        Assert.Equal(0, back.Unreadable);
    }

    /// <inheritdoc />
    protected override string PersistenceId(string name) => "actorqueue-distributed-queue-" + name;

    /// <summary>
    /// The journal's parent, standing for its router: once the journal is read back, it keeps <see cref="Lanes"/>
    /// acceptances under way (the next when one is written), hands each written item out and finishes it (but the last
    /// <see cref="Unfinished"/>), and once every item is written accepts a closing one, whose answer means every event before it
    /// is written (one write at a time, in order). Given <c>recovered</c>, it only reports what the journal read back.
    /// </summary>
    private sealed class JournalHost : ReceiveActor
    {
        private long _next = 1;

        private int _written;

        private int _ended;

        private bool _closed;

        public JournalHost(string name, TaskCompletionSource? done, TaskCompletionSource<JournalRecovered>? recovered)
        {
            var journal = Context.ActorOf(DistributedQueueJournalActor.Props(name, Storage), "journal");
            Receive<JournalRecovered>(back =>
            {
                recovered?.TrySetResult(back);
                for (var lane = 0; done is not null && lane < Lanes; lane++)
                {
                    Accept(journal);
                }
            });
            Receive<JournalWritten>(written =>
            {
                if (written.Id == Items + 1)
                {
                    _closed = true;
                }
                else
                {
                    journal.Tell(new JournalStarted(written.Id));
                    if (written.Id <= Items - Unfinished)
                    {
                        journal.Tell(new JournalFinished(written.Id));
                    }

                    // The closing item once every item is written and its events are sent: its answer covers them all.
                    if (++_written == Items || _next <= Items)
                    {
                        Accept(journal);
                    }
                }

                Complete(done);
            });
            Receive<JournalEnded>(_ =>
            {
                _ended++;
                Complete(done);
            });
        }

        private void Accept(IActorRef journal)
        {
            var id = _next++;
            journal.Tell(new JournalAccept(id, new StoredClusterItem("test-producer", id, $"\"item {id}\"", null)));
        }

        private void Complete(TaskCompletionSource? done)
        {
            if (_closed && _ended == Items - Unfinished)
            {
                done?.TrySetResult();
            }
        }
    }
}
