using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>The patience and status read the second review of the durable work queue shares.</summary>
internal static class DurableQueueRound2Review
{
    internal static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>The router's status after every message sent to it before.</summary>
    internal static async Task<QueueProtocol.Status> StatusOfAsync(BoundedQueue<int> queue) =>
        await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance, Bound);
}
