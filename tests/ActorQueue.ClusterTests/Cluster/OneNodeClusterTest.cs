using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>A test class whose every test runs on a one-node cluster of its own, with a TestKit on that node for probes.</summary>
public abstract class OneNodeClusterTest : IAsyncLifetime
{
    private ClusterNodes _cluster = null!;

    /// <summary>The node: its host, singleton and the actors a test starts.</summary>
    protected ActorSystem Node => _cluster.Nodes[0];

    /// <summary>Creates probes on <see cref="Node"/> (not disposed: that would shut the node down).</summary>
    protected Akka.TestKit.Xunit2.TestKit Kit { get; private set; } = null!;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        _cluster = await ClusterNodes.StartAsync(1);
        Kit = new Akka.TestKit.Xunit2.TestKit(Node);
    }

    /// <inheritdoc />
    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    /// <summary>Stops <paramref name="actor"/> and waits until it has stopped.</summary>
    protected async Task StopAsync(IActorRef actor)
    {
        var watcher = Kit.CreateTestProbe();
        watcher.Watch(actor);
        Node.Stop(actor);
        await watcher.ExpectTerminatedAsync(actor, ClusterNodes.StepTimeout);
    }
}
