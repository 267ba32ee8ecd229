using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// The cluster singleton: it owns one gatekeeper per cluster limiter name and one router per distributed queue
/// name, created on the first message for that name. When the singleton moves to another node, its children
/// start afresh there and rebuild their state from the nodes' announcements.
/// </summary>
internal sealed class HubActor : ReceiveActor
{
    /// <summary>The cluster settings its children need.</summary>
    private readonly ActorQueueClusterSettings _settings;

    /// <summary>Where this node's queue routers journal; <c>null</c> when they keep their items in memory.</summary>
    private readonly DistributedQueueStorage? _queueStorage;

    public HubActor(ActorQueueClusterSettings settings, DistributedQueueStorage? queueStorage)
    {
        _settings = settings;
        _queueStorage = queueStorage;
        Receive<LimiterEnvelope>(HandleLimiterEnvelope);
        Receive<QueueEnvelope>(HandleQueueEnvelope);
    }

    public static Props Props(ActorQueueClusterSettings settings, DistributedQueueStorage? queueStorage) =>
        Akka.Actor.Props.Create(() => new HubActor(settings, queueStorage));

    /// <summary>A child name for <paramref name="name"/>: the name itself when it is a valid path element, else its hex.</summary>
    public static string ChildName(string kind, string name) =>
        ActorPath.IsValidPathElement(name) ? $"{kind}-{name}" : $"{kind}-x{Convert.ToHexString(System.Text.Encoding.UTF8.GetBytes(name))}";

    private void HandleLimiterEnvelope(LimiterEnvelope envelope) =>
        ChildFor(AgentKinds.Limiter, envelope.Name,
            () => ClusterGatekeeperActor.Props(envelope.Name, envelope.MaxRunning, envelope.MaxQueued, envelope.WhenFull, envelope.IdleTimeout, _settings.RecoverInterval,
                                             envelope.Rates))
        .Forward(envelope.Message);

    private void HandleQueueEnvelope(QueueEnvelope envelope) =>
        ChildFor(AgentKinds.Queue, envelope.Name, () => DistributedRouterActor.Props(envelope.Name, envelope.Capacity, _settings.MaxDeliveries, _queueStorage))
        .Forward(envelope.Message);

    /// <summary>The child for <paramref name="name"/>, created from <paramref name="props"/> on first use.</summary>
    private IActorRef ChildFor(string kind, string name, Func<Props> props)
    {
        var childName = ChildName(kind, name);
        var child = Context.Child(childName);
        return child.IsNobody() ? Context.ActorOf(props(), childName) : child;
    }
}
