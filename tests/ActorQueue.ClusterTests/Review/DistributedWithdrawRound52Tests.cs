using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;

using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// <see cref="DistributedWorkQueue{TItem, TResult}.TryWithdrawAsync"/>: the submitter takes back an item no worker runs
/// (queued, or handed back by a worker that was lost), it never reaches a worker, ends withdrawn and is counted; an item a
/// worker runs completes as usual, and is not run again if that worker is lost; a durable router does not bring a
/// withdrawn item back. (Round 52: a stopped <c>actorqueue run --cluster</c> could not keep its queued jobs from starting
/// on a worker still up.)
/// </summary>
/// <remarks>
/// Failed before: the API did not exist (error CS1061: 'DistributedWorkQueue&lt;string, int&gt;' does not contain a
/// definition for 'TryWithdrawAsync'). Mutant: a router ignoring withdrawals (answering "a worker runs it") fails five of
/// them ("Assert.True() Failure" on the answer, or the lost worker's item run elsewhere); the others' mutants are named on them.
/// </remarks>
[Collection(ClusterCollection.Name)]
public sealed class DistributedWithdrawRound52Tests
{
    /// <summary>
    /// A queued item is withdrawn: its result says so (no delivery), a worker registered afterwards runs the items before
    /// and after it but never it, and the producer's metrics and the router's status count it.
    /// </summary>
    /// <remarks>
    /// Mutant: the router answering "withdrawn" but leaving the item queued fails with ["a", "b", "c"] run. The exported
    /// counters too (round 53: withdrawn items were in no instrument, so enqueued minus processed drifted by them; failed
    /// before: no <c>ActorQueueTelemetry.QueueWithdrawn</c>; mutant: the producer not adding to it, "Expected: Tuple (1, 2) Actual: Tuple (0, 2)").
    /// </remarks>
    [Fact]
    public async Task A_queued_item_is_withdrawn_never_reaches_a_worker_and_is_counted()
    {
        using var exported = new QueueCounters("withdraw-queued", ActorQueueTelemetry.QueueWithdrawn, ActorQueueTelemetry.QueueProcessed);
        await using var cluster = await ClusterNodes.StartAsync(2);
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("withdraw-queued", maxSize: 10);
        var (a, b, c) = (await SubmitAsync(queue, "a"), await SubmitAsync(queue, "b"), await SubmitAsync(queue, "c"));

        Assert.True(await queue.TryWithdrawAsync(b).WaitAsync(ClusterNodes.StepTimeout));
        var withdrawn = await b.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, false, 0, 0), (withdrawn.Withdrawn, withdrawn.Succeeded, withdrawn.Deliveries, withdrawn.Result));
        Assert.Equal(Akka.Cluster.Cluster.Get(cluster.Nodes[0]).SelfAddress.ToString(), withdrawn.Node); // the router's node
        Assert.True(await queue.TryWithdrawAsync(b).WaitAsync(ClusterNodes.StepTimeout)); // asked again: it is withdrawn

        // One worker takes the queue in order: "b" would run between the other two.
        var ran = new ConcurrentQueue<string>();
        await using var workers = Recording(cluster.Nodes[1], "withdraw-queued", ran);
        Assert.True((await a.Completion.WaitAsync(ClusterNodes.StepTimeout)).Succeeded);
        Assert.True((await c.Completion.WaitAsync(ClusterNodes.StepTimeout)).Succeeded);
        Assert.Equal(["a", "c"], ran);
        Assert.False(await queue.TryWithdrawAsync(a).WaitAsync(ClusterNodes.StepTimeout)); // it has its result

        Assert.Equal(new DistributedQueueMetrics(3, 0, 2, 0, 0, 0, 0) { Withdrawn = 1 }, queue.Metrics);
        Assert.Equal(1, (await queue.GetStatusAsync()).Withdrawn);
        Assert.Equal((1L, 2L), (exported.Of(ActorQueueTelemetry.QueueWithdrawn), exported.Of(ActorQueueTelemetry.QueueProcessed)));
    }

    /// <summary>An item a worker runs is not withdrawn: the answer is <c>false</c> and it completes with its result.</summary>
    [Fact]
    public async Task A_running_item_is_not_withdrawn_and_completes_normally()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (started, gate) = (NewSignal(), NewSignal());
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<string, int>("withdraw-running", async (item, token) =>
        {
            started.TrySetResult();
            await gate.Task.WaitAsync(token);
            return item.Length;
        });
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("withdraw-running", maxSize: 10);
        var item = await SubmitAsync(queue, "running");
        await started.Task.WaitAsync(ClusterNodes.StepTimeout);

        Assert.False(await queue.TryWithdrawAsync(item).WaitAsync(ClusterNodes.StepTimeout));
        gate.SetResult();
        var result = await item.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, false, 7), (result.Succeeded, result.Withdrawn, result.Result));
        Assert.Equal(new DistributedQueueMetrics(1, 0, 1, 0, 0, 0, 0), queue.Metrics);
    }

    /// <summary>
    /// An item withdrawn while a worker ran it, whose worker is then lost (its registration disposed: the item goes back to
    /// the router), is not handed to the idle worker of another node: it ends withdrawn. The next item runs there.
    /// </summary>
    /// <remarks>Mutant: the router requeueing a lost worker's withdrawn item as before fails with ["x", "y"] run on the other node.</remarks>
    [Fact]
    public async Task An_item_withdrawn_while_running_is_not_run_again_when_its_worker_is_lost()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("withdraw-lost", maxSize: 10);
        var (holding, x) = await RunningForEverAsync(cluster, queue, "x");
        Assert.False(await queue.TryWithdrawAsync(x).WaitAsync(ClusterNodes.StepTimeout));

        var ranElsewhere = new ConcurrentQueue<string>();
        await using var idle = Recording(cluster.Nodes[2], "withdraw-lost", ranElsewhere);
        await Poll.ValueAsync(() => queue.GetStatusAsync(), status => status.Workers == 2, ClusterNodes.StepTimeout);
        await holding.DisposeAsync(); // its item goes back to the router

        var result = await x.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, false, 1), (result.Withdrawn, result.Succeeded, result.Deliveries));
        await NextItemRunsAloneAsync(queue, ranElsewhere);
    }

    /// <summary>An item a stopped worker handed back waits in the queue (no worker is left): it can be withdrawn, and never runs.</summary>
    [Fact]
    public async Task An_item_handed_back_by_a_stopped_worker_can_be_withdrawn()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("withdraw-handed-back", maxSize: 10);
        var (holding, x) = await RunningForEverAsync(cluster, queue, "x");
        await holding.DisposeAsync();
        await Poll.ValueAsync(() => queue.GetStatusAsync(), status => status is { Workers: 0, Queued: 1, Redelivered: 1 }, ClusterNodes.StepTimeout);

        Assert.True(await queue.TryWithdrawAsync(x).WaitAsync(ClusterNodes.StepTimeout));
        var result = await x.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, 1), (result.Withdrawn, result.Deliveries));

        var ran = new ConcurrentQueue<string>();
        await using var workers = Recording(cluster.Nodes[1], "withdraw-handed-back", ran);
        await NextItemRunsAloneAsync(queue, ran);
    }

    /// <summary>
    /// A durable router journals a withdrawal as the item's end: after the loss of every node, a router reading the
    /// journal back runs the items before and after the withdrawn one, never it.
    /// </summary>
    /// <remarks>Mutant: the durable router withdrawing without journaling the end fails with [1, 2, 3] run by the second cluster.</remarks>
    [Fact]
    public async Task A_durable_router_does_not_bring_a_withdrawn_item_back_after_every_node_is_lost()
    {
        using var store = new DurableDistributedQueueTests.TemporaryFolder();
        var durability = new QueueDurability { StoragePath = store.DatabasePath };
        const string name = "withdraw-durable";
        await using (var first = await ClusterNodes.StartAsync(2, durability: durability))
        {
            await using var queue = ActorQueueCluster.Get(first.Nodes[1]).WorkQueue<int, int>(name, maxSize: 10);
            var items = new List<DistributedItem<int>>();
            for (var i = 1; i <= 3; i++)
            {
                items.Add((await queue.SubmitAsync(i, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout))!);
            }

            Assert.True(await queue.TryWithdrawAsync(items[1]).WaitAsync(ClusterNodes.StepTimeout));
            Assert.True((await items[1].Completion.WaitAsync(ClusterNodes.StepTimeout)).Withdrawn);
        }

        var ran = new ConcurrentQueue<int>();
        await using var second = await ClusterNodes.StartAsync(1, durability: durability);
        await using var workers = ActorQueueCluster.Get(second.Nodes[0]).RegisterWorkers<int, int>(name, (item, _) =>
        {
            ran.Enqueue(item);
            return Task.FromResult(item);
        });
        await Poll.UntilAsync(() => ran.Contains(3), ClusterNodes.StepTimeout, () => $"items run: {string.Join(", ", ran)}");
        Assert.Equal([1, 3], ran);
    }

    /// <summary>
    /// A withdrawal stands across a move of the router: the producer names its withdrawn items in its announcement to the
    /// new router, which withdraws them before it hands any out. Here the item still runs on a worker of the lost router,
    /// which the new one cannot know: the re-announced copy ends withdrawn, and the old worker's result is a duplicate.
    /// </summary>
    /// <remarks>
    /// A durable router reads the item back from its journal (its hand-out written: 1 delivery before) and withdraws it
    /// from its queue when the announcement names it. Mutant: an announcement without the withdrawn items fails (memory):
    /// the item waits in the new router's queue and its completion times out.
    /// </remarks>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_withdrawal_stands_across_a_move_of_the_router(bool durable)
    {
        using var store = new DurableDistributedQueueTests.TemporaryFolder();
        await using var cluster = await ClusterNodes.StartAsync(3, durability: durable ? new QueueDurability { StoragePath = store.DatabasePath } : null);
        var (started, gate) = (NewSignal(), NewSignal());
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[2]).RegisterWorkers<string, int>("withdraw-moved", async (item, token) =>
        {
            started.TrySetResult();
            await gate.Task.WaitAsync(token);
            return item.Length;
        });
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<string, int>("withdraw-moved", maxSize: 10);
        var x = await SubmitAsync(queue, "x");
        await started.Task.WaitAsync(ClusterNodes.StepTimeout);
        Assert.False(await queue.TryWithdrawAsync(x).WaitAsync(ClusterNodes.StepTimeout));

        await cluster.CrashAsync(cluster.Nodes[0]); // the router's node: the producer announces x to the next router
        var result = await x.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal((true, durable ? 1 : 0), (result.Withdrawn, result.Deliveries));
        gate.SetResult();
        await Poll.UntilAsync(() => queue.Metrics.Duplicates == 1, ClusterNodes.StepTimeout, () => $"the old worker's result is a duplicate: {queue.Metrics}");
        Assert.Equal(new DistributedQueueMetrics(1, 0, 0, 0, 0, 1, 0) { Withdrawn = 1 }, queue.Metrics);
    }

    /// <summary>A null item, one the caller made, and one of another handle are refused, naming the parameter.</summary>
    [Fact]
    public async Task An_item_not_submitted_through_the_handle_is_refused_naming_the_parameter()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        await using var queue = node.WorkQueue<string, int>("withdraw-arguments", maxSize: 10);
        await using var other = node.WorkQueue<string, int>("withdraw-arguments", maxSize: 10);
        var ours = await SubmitAsync(queue, "ours");

        Assert.Equal("item", (await Assert.ThrowsAsync<ArgumentNullException>(() => queue.TryWithdrawAsync(null!))).ParamName);
        var made = new DistributedItem<int>(ours.ItemId, ours.Completion);
        Assert.Equal("item", (await Assert.ThrowsAsync<ArgumentException>(() => queue.TryWithdrawAsync(made))).ParamName);
        Assert.Equal("item", (await Assert.ThrowsAsync<ArgumentException>(() => other.TryWithdrawAsync(ours))).ParamName);
        Assert.True(await queue.TryWithdrawAsync(ours).WaitAsync(ClusterNodes.StepTimeout));
    }

    /// <summary>The withdrawal's messages, and the fields it adds to an announcement and a status, survive the wire.</summary>
    [Fact]
    public async Task The_withdrawal_messages_round_trip_through_the_serializer()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var system = cluster.Nodes[0];
        T RoundTrip<T>(T message, string manifest)
        {
            var serializer = Assert.IsType<ClusterMessageSerializer>(system.Serialization.FindSerializerFor(message!));
            Assert.Equal(manifest, serializer.Manifest(message!));
            return Assert.IsType<T>(system.Serialization.Deserialize(serializer.ToBinary(message!), serializer.Identifier, manifest));
        }

        Assert.Equal(new WithdrawItem(5, 7), RoundTrip(new WithdrawItem(5, 7), "WI"));
        Assert.Equal(new WithdrawAnswer(7, true, 2, "akka.tcp://a@h:1"), RoundTrip(new WithdrawAnswer(7, true, 2, "akka.tcp://a@h:1"), "WW"));
        Assert.Equal([2L], RoundTrip(new ProducerAnnounce(5, 10, [1, 2], ["1", "2"]) { Withdrawn = [2] }, "PA").Withdrawn);
        Assert.Equal(3, RoundTrip(new DistributedQueueStatus("q", 1, 2, 3, 4, 5, 6, 7) { Withdrawn = 3 }, "QT").Withdrawn);
    }

    /// <summary>Puts <paramref name="item"/> and waits until the one worker registered on node 1 runs it (until cancelled, when the registration is disposed).</summary>
    private static async Task<(DistributedWorkers Holding, DistributedItem<int> Item)> RunningForEverAsync(ClusterNodes cluster, DistributedWorkQueue<string, int> queue, string item)
    {
        var started = NewSignal();
        var holding = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<string, int>(queue.Name, async (_, token) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
            return 0;
        });
        var submitted = await SubmitAsync(queue, item);
        await started.Task.WaitAsync(ClusterNodes.StepTimeout);
        return (holding, submitted);
    }

    /// <summary>Registers one worker on <paramref name="node"/> that records the items it runs in <paramref name="ran"/>.</summary>
    private static DistributedWorkers Recording(Akka.Actor.ActorSystem node, string name, ConcurrentQueue<string> ran) =>
        ActorQueueCluster.Get(node).RegisterWorkers<string, int>(name, (item, _) =>
        {
            ran.Enqueue(item);
            return Task.FromResult(item.Length);
        });

    /// <summary>After "x" was withdrawn: "y" runs on the recording workers, alone, and the metrics count one of each.</summary>
    private static async Task NextItemRunsAloneAsync(DistributedWorkQueue<string, int> queue, ConcurrentQueue<string> ran)
    {
        var y = await SubmitAsync(queue, "y");
        Assert.True((await y.Completion.WaitAsync(ClusterNodes.StepTimeout)).Succeeded);
        Assert.Equal(["y"], ran);
        Assert.Equal(new DistributedQueueMetrics(2, 0, 1, 0, 0, 0, 0) { Withdrawn = 1 }, queue.Metrics);
    }

    /// <summary>The totals of some of the library's counters for one queue, as an exporter would sum them.</summary>
    private sealed class QueueCounters : IDisposable
    {
        private readonly ConcurrentDictionary<string, long> _totals = new();
        private readonly MeterListener _listener = new();

        public QueueCounters(string queue, params string[] instruments)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name && instruments.Contains(instrument.Name))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == ActorQueueTelemetry.QueueNameTag && (string?)tag.Value == queue)
                    {
                        _totals.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Of(string instrument) => _totals.GetValueOrDefault(instrument);

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>A signal whose continuations run off the completing thread.</summary>
    internal static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary><paramref name="item"/> submitted, waiting for space as long as it takes, within the step's bound.</summary>
    internal static async Task<DistributedItem<int>> SubmitAsync(DistributedWorkQueue<string, int> queue, string item) =>
        (await queue.SubmitAsync(item, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout))!;
}
