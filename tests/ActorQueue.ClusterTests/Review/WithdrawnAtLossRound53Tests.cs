using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// An item withdrawn while a worker ran it, whose worker finishes it and is lost at once (round 53, S1): the worker's
/// result goes straight to the producer, the router's unasked "withdrawn" (the item is not run again after its worker's
/// loss) comes from the router, and nothing orders the two. The rule, pinned here in both orders: the producer takes the
/// first, its caller hears exactly one outcome, and the other counts as nothing (an answer for an item it no longer
/// holds) or as a duplicate (a result after the item ended). A real producer (its hub a probe) and a memory router; the
/// worker is a probe, so the test chooses the order.
/// </summary>
/// <remarks>
/// Coverage, passing before and after: no rule does better without a timeout (the producer cannot tell a result on its
/// way from one lost with its node; docs/ARCHITECTURE.md, "Withdrawal"). Mutant: the producer counting a result for an
/// item it no longer holds as succeeded (not as a duplicate) fails the answer-first case (its poll times out: "the late
/// result is counted as a duplicate").
/// </remarks>
[Collection(ClusterCollection.Name)]
public sealed class WithdrawnAtLossRound53Tests : OneNodeClusterTest
{
    private static readonly TimeSpan Step = ClusterNodes.StepTimeout;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_finished_item_whose_worker_is_lost_after_its_withdrawal_has_one_outcome(bool resultFirst)
    {
        var name = "withdrawn-at-loss-" + resultFirst;
        var router = Node.ActorOf(DistributedRouterActor.Props(name, capacity: 10, maxDeliveries: 3), "router-" + name);
        var hub = Kit.CreateTestProbe();
        var counts = new ProducerCounts();
        var producer = Node.ActorOf(DistributedProducerActor.Props(name, 10, hub.Ref, counts, TimeSpan.FromHours(1)), "producer-" + name);
        var item = new PutItem("\"x\"", -1);
        producer.Tell(item);
        router.Tell((await hub.ExpectMsgAsync<QueueEnvelope>(Step)).Message, producer); // a first contact: the router asks for its announcement
        Assert.True(await item.Accepted.Task.WaitAsync(Step));

        var worker = Kit.CreateTestProbe();
        await DurableRecoveredHoldRound53Tests.AnnounceFreeWorkerAsync(router, worker);
        var dispatched = await worker.ExpectMsgAsync<DispatchItem>(Step);
        var withdrawal = new WithdrawRequest(item.ItemId);
        producer.Tell(withdrawal);
        Assert.False(await withdrawal.Answer.Task.WaitAsync(Step)); // a worker runs it: marked, not run again if that worker is lost

        var result = new ItemDone(item.ItemId, dispatched.Envelope.Deliveries, true, "1", null, "worker");
        if (resultFirst)
        {
            producer.Tell(result, worker.Ref); // the worker's result, then the worker is lost before its pull
        }

        await StopAsync(worker.Ref);
        var ended = await item.Done.Task.WaitAsync(Step);
        if (!resultFirst)
        {
            producer.Tell(result, worker.Ref); // the result, overtaken by the router's answer
            await Poll.UntilAsync(() => Volatile.Read(ref counts.Duplicates) == 1, Step, "the late result is counted as a duplicate");
        }

        // The router counts the item withdrawn at its worker's loss either way (it cannot know of the result).
        await Poll.ValueAsync(() => router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, Step), status => status.Withdrawn == 1, Step);
        Assert.Equal(resultFirst
                ? (true, false, 1, 1L, 0L, 0L)
                : (false, true, 1, 0L, 1L, 1L),
            (ended.Succeeded, ended.Withdrawn, ended.Deliveries, Volatile.Read(ref counts.Succeeded), Volatile.Read(ref counts.Withdrawn), Volatile.Read(ref counts.Duplicates)));
    }
}
