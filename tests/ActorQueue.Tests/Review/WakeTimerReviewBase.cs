using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Review;

/// <summary>The durable store, status reads and millisecond the wake timer reviews share.</summary>
public abstract class WakeTimerReviewBase : ActorQueueTestKit, IDisposable
{
    private protected static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private protected DurableStore? _store;

    public new void Dispose()
    {
        base.Dispose();
        _store?.Dispose();
    }

    // ---------------------------------------------------------------- helpers

    private protected async Task<Status> StatusOf(IActorRef gatekeeper)
    {
        var probe = CreateTestProbe();
        gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    private protected async Task<QueueProtocol.Status> QueueStatusOf(BoundedQueue<int> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }
}
