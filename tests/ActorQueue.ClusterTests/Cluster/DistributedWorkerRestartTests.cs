using ActorQueue.Cluster;
using Akka.Actor;
using Akka.TestKit;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A distributed queue's worker whose handler throws (here: a malformed dispatch while it runs an item, standing for any
/// error in a handler) keeps running its item and goes on pulling. Before, Akka's default supervision restarted it: the
/// item it ran was cancelled and reported failed, and the new instance, a first contact to a router that had the worker
/// as announced, was never asked again, so it never pulled: the next item was never run.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedWorkerRestartTests : OneNodeClusterTest
{
    private const string Name = "worker-restart";

    [Fact]
    public async Task A_worker_that_failed_on_a_message_finishes_its_item_and_runs_the_next()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<string?> Run(string payload, CancellationToken token)
        {
            if (payload == "\"first\"")
            {
                started.TrySetResult();
                await gate.Task.WaitAsync(token);
            }

            return payload;
        }

        var (producer, worker) = Start(Run);
        var first = new PutItem("\"first\"", -1);
        producer.Tell(first);
        await started.Task.WaitAsync(ClusterNodes.StepTimeout);

        worker.Tell(new DispatchItem(0, null!)); // throws in the handler while the worker runs the first item
        var second = new PutItem("\"second\"", -1);
        producer.Tell(second);
        Assert.True(await second.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        gate.SetResult();

        var firstDone = await first.Done.Task.WaitAsync(ClusterNodes.StepTimeout);
        Assert.True(firstDone.Succeeded, firstDone.Error); // before: cancelled by the restart
        var secondDone = await second.Done.Task.WaitAsync(ClusterNodes.StepTimeout); // before: never run
        Assert.True(secondDone.Succeeded, secondDone.Error);
        Assert.Equal("\"second\"", secondDone.ResultPayload);
    }

    /// <summary>A router, a producer and a worker on the node; their hub is a probe that hands everything to the router.</summary>
    private (IActorRef Producer, IActorRef Worker) Start(Func<string, CancellationToken, Task<string?>> run)
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-" + Name);
        var hub = Kit.CreateTestProbe();
        hub.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
        {
            router.Tell(((QueueEnvelope)message).Message, sender);
            return AutoPilot.KeepRunning;
        }));
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var worker = Node.ActorOf(DistributedWorkerActor.Props(Name, run, hub.Ref, "worker-node", TimeSpan.FromHours(1)));
        return (producer, worker);
    }
}
