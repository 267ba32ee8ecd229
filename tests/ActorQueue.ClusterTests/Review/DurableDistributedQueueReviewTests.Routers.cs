using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;

namespace ActorQueue.Tests.Review;

public sealed partial class DurableDistributedQueueReviewTests
{
    /// <summary>The router's status, or its <see cref="Terminated"/>, or <c>null</c> when neither came within a step (a restart loop).</summary>
    private async Task<object?> AskStatusWatchingAsync(IActorRef router)
    {
        var asker = Kit.CreateTestProbe();
        asker.Watch(router);
        router.Tell(GetQueueStatus.Instance, asker.Ref);
        return await asker.ReceiveOneAsync(Step);
    }

    private IActorRef StartRouter(string name, int capacity, int maxDeliveries = 3) =>
        Node.ActorOf(DistributedRouterActor.Props(name, capacity, maxDeliveries, Storage), "review-router-" + name + "-" + Guid.NewGuid().ToString("N"));

    private async Task StopAsync(IActorRef router)
    {
        var watcher = Kit.CreateTestProbe();
        watcher.Watch(router);
        Node.Stop(router);
        await watcher.ExpectTerminatedAsync(router, Step);
    }

    private static async Task<long> AnnounceProducerAsync(IActorRef router, TestProbe producer, int capacity)
    {
        router.Tell(new AgentHello(0), producer.Ref);
        var epoch = (await producer.ExpectMsgAsync<RecoverQueue>(Step)).Epoch;
        router.Tell(new ProducerAnnounce(epoch, capacity, [], []), producer.Ref);
        return epoch;
    }

    private static async Task AnnounceWorkerAsync(IActorRef router, TestProbe worker)
    {
        router.Tell(new AgentHello(0), worker.Ref);
        var epoch = (await worker.ExpectMsgAsync<RecoverQueue>(Step)).Epoch;
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker.Ref);
    }

    /// <summary>Writes <paramref name="records"/> under the queue's persistence id, as an earlier router's journal would have.</summary>
    private async Task SeedAsync(string queueName, params byte[][] records)
    {
        var seeder = Node.ActorOf(Props.Create(() => new Seeder("actorqueue-distributed-queue-" + queueName)));
        await seeder.Ask<string>(records, Step);
        await StopAsync(seeder);
    }

    private sealed class Seeder : ReceivePersistentActor
    {
        public Seeder(string persistenceId)
        {
            PersistenceId = persistenceId;
            JournalPluginId = JournalId;
            SnapshotPluginId = SnapshotId;
            Command<byte[][]>(records =>
            {
                var replyTo = Sender;
                var written = 0;
                PersistAll(records, _ =>
                {
                    if (++written == records.Length)
                    {
                        replyTo.Tell("seeded");
                    }
                });
            });
        }

        public override string PersistenceId { get; }
    }
}
