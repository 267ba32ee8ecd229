using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>A distributed queue whose router journals its items (<see cref="ClusterNodeOptions.QueueDurability"/>).</summary>
[Collection(ClusterCollection.Name)]
public sealed class DurableDistributedQueueTests
{
    /// <summary>A journal whose writes wait until the test opens it (<see cref="GatedJournal"/>), and an in-memory snapshot store.</summary>
    private const string GatedJournalConfig = """
        actorqueue.test.gated-journal {
          class = "ActorQueue.Tests.Cluster.GatedJournal, ActorQueue.ClusterTests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """;

    private static readonly QueueDurability Gated = new()
    {
        JournalPluginId = "actorqueue.test.gated-journal",
        SnapshotPluginId = "akka.persistence.snapshot-store.inmem",
    };

    [Fact]
    public async Task Accepted_items_survive_the_loss_of_every_node_and_a_finished_item_never_runs_again()
    {
        using var store = new TemporaryFolder();
        var durability = new QueueDurability { StoragePath = store.DatabasePath, SnapshotEvery = 7 };
        const string name = "survivor";

        // Cluster A accepts 30 items; no node has workers, and then every node is gone.
        await using (var first = await ClusterNodes.StartAsync(2, durability: durability))
        {
            await using var queue = ActorQueueCluster.Get(first.Nodes[1]).WorkQueue<int, int>(name, maxSize: 50);
            for (var i = 0; i < 30; i++)
            {
                Assert.NotNull(await queue.SubmitAsync(i, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout));
            }
        }

        // Cluster B, on the same journal, runs every accepted item once; its workers then stop and one more item is put.
        var ranInB = new ConcurrentDictionary<int, int>();
        await using (var second = await ClusterNodes.StartAsync(2, durability: durability))
        {
            var workers = ActorQueueCluster.Get(second.Nodes[1]).RegisterWorkers<int, int>(name, (item, _) =>
            {
                ranInB.AddOrUpdate(item, 1, (_, count) => count + 1);
                return Task.FromResult(item);
            });
            await using var queue = ActorQueueCluster.Get(second.Nodes[0]).WorkQueue<int, int>(name, maxSize: 50);
            await Poll.UntilAsync(() => ranInB.Count == 30, ClusterNodes.StepTimeout, () => $"{ranInB.Count} of the 30 accepted items ran");
            await Poll.ValueAsync(() => queue.GetStatusAsync(), status => status is { Queued: 0, InFlight: 0 }, ClusterNodes.StepTimeout); // every item finished
            await workers.DisposeAsync();

            // Its acceptance is written after every earlier completion (one journal, in order): cluster C starts from here.
            Assert.NotNull(await queue.SubmitAsync(1000, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout));
        }

        Assert.Equal(Enumerable.Range(0, 30), ranInB.Keys.Order());
        Assert.All(ranInB.Values, count => Assert.Equal(1, count));

        // Cluster C runs only the item B left: the finished ones (older, so they would run first) never run again.
        var ranInC = new ConcurrentQueue<int>();
        var marker = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var third = await ClusterNodes.StartAsync(1, durability: durability))
        {
            await using var workers = ActorQueueCluster.Get(third.Nodes[0]).RegisterWorkers<int, int>(name, (item, _) =>
            {
                ranInC.Enqueue(item);
                if (item == 1000)
                {
                    marker.TrySetResult();
                }

                return Task.FromResult(item);
            });
            await marker.Task.WaitAsync(ClusterNodes.StepTimeout);
        }

        Assert.Equal(new[] { 1000 }, ranInC);
    }

    [Fact]
    public async Task A_durable_router_acknowledges_a_put_only_once_its_item_is_written()
    {
        GatedJournal.Reset();
        await using var cluster = await ClusterNodes.StartAsync(1, GatedJournalConfig, Gated);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        await using var queue = node.WorkQueue<string, int>("gated", maxSize: 5);

        var put = queue.SubmitAsync("held", Timeout.InfiniteTimeSpan);
        await GatedJournal.WriteArrived.Task.WaitAsync(ClusterNodes.StepTimeout);

        // The router told the journal before the write arrived; an acknowledgement sent with it would be in the
        // producer's mailbox before this status request, which the producer handles (and forwards) in order.
        await queue.GetStatusAsync();
        Assert.False(put.IsCompleted, "the put was acknowledged while its item was not yet written");

        GatedJournal.Open.TrySetResult();
        var accepted = await put.WaitAsync(ClusterNodes.StepTimeout);
        Assert.NotNull(accepted);
        await using var workers = node.RegisterWorkers<string, int>("gated", (item, _) => Task.FromResult(item.Length));
        Assert.Equal(4, (await accepted.Completion.WaitAsync(ClusterNodes.StepTimeout)).Result);
    }

    [Fact]
    public async Task After_a_hand_over_every_item_runs_and_only_items_running_at_the_hand_over_run_twice()
    {
        using var store = new TemporaryFolder();
        var durability = new QueueDurability { StoragePath = store.DatabasePath };

        await using var cluster = await ClusterNodes.StartAsync(3, durability: durability);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runs = new ConcurrentDictionary<int, int>();
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[2]).RegisterWorkers<int, int>("handed-over", async (item, token) =>
        {
            runs.AddOrUpdate(item, 1, (_, count) => count + 1);
            await gate.Task.WaitAsync(token);
            return -item;
        }, numWorkers: 3);

        await using var queue = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<int, int>("handed-over", maxSize: 50);
        var submitted = new List<DistributedItem<int>>();
        for (var i = 0; i < 40; i++)
        {
            submitted.Add((await queue.SubmitAsync(i, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout))!);
        }

        await Poll.UntilAsync(() => runs.Count == 3, ClusterNodes.StepTimeout, "three items are in flight");
        var runningAtHandOver = runs.Keys.ToHashSet();
        await cluster.CrashAsync(cluster.Nodes[0]); // the router's node: the new router reads the journal back
        gate.SetResult();

        var results = await Task.WhenAll(submitted.Select(item => item.Completion)).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => -i), results.Select(result => result.Result));
        Assert.All(results, result => Assert.True(result.Succeeded));
        await queue.JoinAsync().WaitAsync(ClusterNodes.StepTimeout);
        await Poll.ValueAsync(() => queue.GetStatusAsync(), status => status is { Queued: 0, InFlight: 0 }, ClusterNodes.StepTimeout);

        // At-least-once: a second run only for an item that was running when the router's node died; every other
        // item (queued there, and re-announced by its producer too) ran exactly once.
        var twice = runs.Where(run => run.Value > 1).Select(run => run.Key).ToHashSet();
        Assert.Subset(runningAtHandOver, twice);
        Assert.All(runs.Values, count => Assert.InRange(count, 1, 2));
        await Poll.UntilAsync(() => queue.Metrics.Duplicates == runs.Values.Sum() - 40, ClusterNodes.StepTimeout,
            () => $"{queue.Metrics.Duplicates} duplicates are counted for {runs.Values.Sum() - 40} extra runs");
    }

    [Fact]
    public async Task A_node_whose_journal_file_is_not_a_database_fails_to_start_naming_the_file()
    {
        using var store = new TemporaryFolder();
        await File.WriteAllTextAsync(store.DatabasePath, "this is not a SQLite database, and it is long enough to have a header");
        var options = TestCertificates.MemberOptions("node0") with { QueueDurability = new QueueDurability { StoragePath = store.DatabasePath } };

        var error = Assert.Throws<QueueStorageException>(() => ActorQueueClusterRuntime.Create(options, ClusterNodes.FastCluster).Dispose());
        Assert.Contains(store.DatabasePath, error.Message);
    }

    [Fact]
    public void A_stored_item_keeps_its_producer_id_payload_and_trace_on_disk_and_a_cut_record_is_refused()
    {
        var traced = new StoredClusterItem("akka.ssl.tcp://actorqueue@127.0.0.1:4053/system/actorqueue-producer-q-1#123", 42, "{\"a\":1}",
            new ItemTrace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=1"));
        var untraced = traced with { ItemId = 43, Trace = null };

        Assert.Equal(traced, StoredClusterItem.Decode(StoredClusterItem.Encode(traced)));
        Assert.Equal(untraced, StoredClusterItem.Decode(StoredClusterItem.Encode(untraced)));
        var bytes = StoredClusterItem.Encode(traced);
        Assert.Throws<InvalidDataException>(() => StoredClusterItem.Decode(bytes[..^3]));
    }

    /// <summary>A folder of its own for a test's SQLite journal, deleted afterwards (also DistributedWithdrawRound52Tests').</summary>
    internal sealed class TemporaryFolder : IDisposable
    {
        private readonly string _folder = Directory.CreateTempSubdirectory("actorqueue-cluster-durable-").FullName;

        public string DatabasePath => Path.Combine(_folder, "queues.db");

        public void Dispose()
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // SQLite's pool may still hold the file for an instant; the temporary folder is cleaned by the system.
            }
        }
    }
}
