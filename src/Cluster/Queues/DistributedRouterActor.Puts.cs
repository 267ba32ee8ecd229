using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Cluster;

// A router's puts waiting for space: each waits (and is a timer key) until space frees, its timeout expires, it is
// withdrawn, or its producer announces it (accepted past the bound).
internal sealed partial class DistributedRouterActor
{
    /// <summary>Accepts one put if there is space and nobody waits before it; else it waits (or is refused at once for a zero timeout).</summary>
    private void Enqueue(IActorRef producer, long itemId, string payload, ItemTrace? trace, long timeoutMs)
    {
        if (Known(producer, itemId))
        {
            return;
        }

        if (Occupied < Capacity && _waitingPuts.IsEmpty)
        {
            Accept(producer, itemId, payload, trace);
            return;
        }

        if (timeoutMs == 0)
        {
            producer.Tell(new EnqueueFull(itemId));
            _listenerFailures.Add(ActorQueueTelemetry.QueueBackpressureCounter, 1, _metricTag);
            return;
        }

        var put = new WaitingPut(producer, itemId, payload, trace);
        _waitingPuts.Enqueue(put);
        _waiting.Add((producer, itemId), put);
        if (timeoutMs > 0)
        {
            Timers.StartSingleTimer(put, new PutExpired(put), TimeSpan.FromMilliseconds(timeoutMs));
        }
    }

    private void HandlePutExpired(PutExpired message)
    {
        if (_waitingPuts.Remove(message.Put))
        {
            _waiting.Remove((message.Put.Producer, message.Put.ItemId));
            message.Put.Producer.Tell(new EnqueueFull(message.Put.ItemId));
            _listenerFailures.Add(ActorQueueTelemetry.QueueBackpressureCounter, 1, _metricTag);
        }
    }

    /// <summary>A put waiting for space; it is also its own timer key.</summary>
    private sealed class WaitingPut(IActorRef producer, long itemId, string payload, ItemTrace? trace) : WaiterNode<WaitingPut>
    {
        public ItemTrace? Trace { get; } = trace;

        public IActorRef Producer { get; } = producer;

        public long ItemId { get; } = itemId;

        public string Payload { get; } = payload;
    }

    private sealed record PutExpired(WaitingPut Put);
}
