using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Cluster;

using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of round 52's withdrawal: a put still waiting for space (the queue at capacity) has no item to withdraw, so a
/// stopped <c>run --cluster</c> could not keep it from starting once the space a withdrawn item freed let it in;
/// cancelling its <see cref="DistributedWorkQueue{TItem, TResult}.SubmitAsync"/> now withdraws it at the router. And a
/// durable router answered a second withdrawal of an item whose withdrawal it was writing "not withdrawn", which the
/// producer gave the first caller too.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedPutCancelRound52Tests
{
    /// <summary>
    /// Capacity 1: the one worker runs "1", "2" is queued, "3" waits for space. Cancelling the put of "3" withdraws it:
    /// its SubmitAsync throws <see cref="OperationCanceledException"/>, and the space "2"'s withdrawal frees does not let it
    /// in: when "1" ends, the worker runs nothing more until "4" is put. Both withdrawals are counted, "3" not as accepted.
    /// </summary>
    /// <remarks>
    /// Failed before: "Assert.Throws() Failure: Exception type was not an exact match ... Actual: typeof(System.TimeoutException)"
    /// — the cancelled SubmitAsync waited on (only checked before the put was sent), and the put stayed at the router, to be
    /// let in by "2"'s withdrawal and run. Mutants: the producer ending the cancelled put itself without withdrawing it at
    /// the router fails "Assert.Equal() Failure: Expected: 0 Actual: 1" ("3" let into the queue by "2"'s withdrawal); the
    /// producer taking a withdrawn unaccepted put as accepted (SubmitAsync returning it) fails "Assert.Throws() Failure: No
    /// exception was thrown".
    /// </remarks>
    [Fact]
    public async Task Cancelling_a_put_waiting_for_space_withdraws_it_so_the_space_a_withdrawal_frees_does_not_let_it_in()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        const string name = "cancel-waiting-put";
        var ran = new ConcurrentQueue<string>();
        var (started, gate) = (NewSignal(), NewSignal());
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<string, int>(name, async (item, token) =>
        {
            ran.Enqueue(item);
            started.TrySetResult();
            await gate.Task.WaitAsync(token);
            return item.Length;
        });
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>(name, maxSize: 1);
        var one = await SubmitAsync(queue, "1");
        await started.Task.WaitAsync(ClusterNodes.StepTimeout);
        var two = await SubmitAsync(queue, "2");
        using var cancel = new CancellationTokenSource();
        var three = queue.SubmitAsync("3", Timeout.InfiniteTimeSpan, cancel.Token);
        await Poll.ValueAsync(() => queue.GetStatusAsync(), status => status is { Queued: 1, WaitingPuts: 1 }, ClusterNodes.StepTimeout);

        await cancel.CancelAsync();
        var cancelled = await Assert.ThrowsAsync<OperationCanceledException>(() => three.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(cancel.Token, cancelled.CancellationToken);
        Assert.True(await queue.TryWithdrawAsync(two).WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(0, (await queue.GetStatusAsync()).Queued); // "3" was not let into the space

        gate.SetResult();
        Assert.True((await one.Completion.WaitAsync(ClusterNodes.StepTimeout)).Succeeded);
        var four = await SubmitAsync(queue, "4");
        Assert.True((await four.Completion.WaitAsync(ClusterNodes.StepTimeout)).Succeeded);
        Assert.Equal(["1", "4"], ran);
        Assert.Equal(new DistributedQueueMetrics(3, 0, 2, 0, 0, 0, 0) { Withdrawn = 2 }, queue.Metrics);
        Assert.Equal(2, (await queue.GetStatusAsync()).Withdrawn);
    }

    /// <summary>
    /// A put cancelled before it is sent is not sent: <see cref="OperationCanceledException"/>, nothing counted.
    /// </summary>
    [Fact]
    public async Task A_put_cancelled_before_it_is_sent_is_not_sent()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("cancel-before-send", maxSize: 1);
        await Assert.ThrowsAsync<OperationCanceledException>(() => queue.SubmitAsync("x", Timeout.InfiniteTimeSpan, new CancellationToken(canceled: true)));
        Assert.Equal(new DistributedQueueMetrics(0, 0, 0, 0, 0, 0, 0), queue.Metrics);
    }

    /// <summary>
    /// A durable router writes a withdrawn item's end before it answers. Two withdrawals of one queued item back to back
    /// both answer <c>true</c>: the second, arriving while the first's end is written, is answered with it.
    /// </summary>
    /// <remarks>
    /// Failed before: "Assert.Equal() Failure: Values differ Expected: (True, True) Actual: (False, False)" — the second
    /// found nothing queued and answered "not withdrawn", which the producer gave both callers, while the item then ended
    /// withdrawn. Mutant: the router's check of an end being written as a withdrawal removed fails the same way (False, False).
    /// </remarks>
    [Fact]
    public async Task Two_withdrawals_of_an_item_at_a_durable_router_both_answer_withdrawn()
    {
        using var store = new DurableDistributedQueueTests.TemporaryFolder();
        await using var cluster = await ClusterNodes.StartAsync(1, durability: new QueueDurability { StoragePath = store.DatabasePath });
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("withdraw-twice-durable", maxSize: 10);
        var x = await SubmitAsync(queue, "x");

        var (first, second) = (queue.TryWithdrawAsync(x), queue.TryWithdrawAsync(x));
        Assert.Equal((true, true), (await first.WaitAsync(ClusterNodes.StepTimeout), await second.WaitAsync(ClusterNodes.StepTimeout)));
        Assert.True((await x.Completion.WaitAsync(ClusterNodes.StepTimeout)).Withdrawn);
        Assert.Equal(new DistributedQueueMetrics(1, 0, 0, 0, 0, 0, 0) { Withdrawn = 1 }, queue.Metrics);
    }

    private static TaskCompletionSource NewSignal() => DistributedWithdrawRound52Tests.NewSignal();

    private static Task<DistributedItem<int>> SubmitAsync(DistributedWorkQueue<string, int> queue, string item) => DistributedWithdrawRound52Tests.SubmitAsync(queue, item);
}
