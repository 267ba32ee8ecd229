using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Serialization;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// What even an authenticated member may not send: types named on the wire (Akka's JSON and protobuf serializers),
/// possibly harmful messages, and actor selections outside the cluster's own paths. Each rogue message is followed by
/// a marker on the same connection, which Akka delivers in order, so once the marker arrived the rogue message has
/// been dealt with.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterWireLockdownTests
{
    /// <summary>
    /// A member built without ActorQueue's restrictions: Akka's type-naming JSON serializer for everything unbound, a
    /// serializer that sends <see cref="ProtoGadget"/> under the protobuf serializer's identifier with its type name
    /// as the manifest, and untrusted mode off.
    /// </summary>
    private const string InsiderConfig = """
        akka.actor.serializers.json = "Akka.Serialization.NewtonSoftJsonSerializer, Akka"
        akka.actor.serializers.proto = "ActorQueue.Tests.Cluster.ClusterWireLockdownTests+TypeNamingSerializer, ActorQueue.ClusterTests"
        akka.actor.serialization-bindings {
          "ActorQueue.Tests.Cluster.ClusterWireLockdownTests+ProtoGadget, ActorQueue.ClusterTests" = proto
        }
        akka.remote.untrusted-mode = off
        """;

    [Fact]
    public async Task A_member_cannot_make_a_node_build_a_type_named_on_the_wire()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var insider = await cluster.AddNodeAsync(InsiderConfig);
        var (_, path, received, marker) = Recorder(cluster.Nodes[0]);
        var remoteTarget = RemoteRef(insider, path);
        var json = new JsonGadget { Payload = "json" };
        var proto = new ProtoGadget();
        // The premise: the insider really sends the gadget with the type-naming serializer (with its HOCON naming a
        // wrong assembly, Akka left the binding out and this test passed without sending it that way).
        Assert.IsType<TypeNamingSerializer>(insider.Serialization.FindSerializerFor(proto));
        var built = (JsonGadget.Built, ProtoGadget.Built);

        remoteTarget.Tell(json); // Newtonsoft with $type on the insider, serializer id 1 on the wire
        remoteTarget.Tell(proto); // serializer id 2, the manifest naming ProtoGadget
        remoteTarget.Tell("marker");
        await marker.WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(built, (JsonGadget.Built, ProtoGadget.Built)); // neither was constructed on the node
        Assert.Equal(["marker"], received);
    }

    [Fact]
    public async Task A_node_sends_no_message_type_without_a_serializer_binding()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var insider = await cluster.AddNodeAsync(InsiderConfig); // would accept it
        var (_, path, received, marker) = Recorder(insider);
        var fromNode = RemoteRef(cluster.Nodes[0], path);

        fromNode.Tell(new JsonGadget { Payload = "unbound" });
        fromNode.Tell("marker");
        await marker.WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(["marker"], received);
    }

    [Fact]
    public async Task A_member_cannot_stop_a_nodes_actors_nor_select_paths_outside_the_cluster_protocol()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var insider = await cluster.AddNodeAsync(InsiderConfig);
        var (target, path, received, marker) = Recorder(cluster.Nodes[0]);
        var stopped = target.WatchAsync();
        var remoteTarget = RemoteRef(insider, path);

        remoteTarget.Tell(PoisonPill.Instance);
        insider.ActorSelection(path).Tell("selected");
        remoteTarget.Tell("marker");

        Assert.Same(marker, await Task.WhenAny(marker, stopped).WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(["marker"], received);
    }

    /// <summary>
    /// An actor on <paramref name="node"/> that records what it receives (the task completes at "marker"), and its
    /// full path with the node's address.
    /// </summary>
    private static (IActorRef Target, string Path, ConcurrentQueue<object> Received, Task Marker) Recorder(ActorSystem node)
    {
        var received = new ConcurrentQueue<object>();
        var marker = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var target = node.ActorOf(Props.Create(() => new RecorderActor(received, marker)), "target");
        return (target, target.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(node).SelfAddress), received, marker.Task);
    }

    /// <summary>
    /// The actor at <paramref name="path"/> as <paramref name="from"/> sees it, resolved without sending anything (an
    /// actor selection would be dropped by untrusted mode, which is a test of its own).
    /// </summary>
    private static IActorRef RemoteRef(ActorSystem from, string path) => ((ExtendedActorSystem)from).Provider.ResolveActorRef(path);

    private sealed class RecorderActor : ReceiveActor
    {
        public RecorderActor(ConcurrentQueue<object> received, TaskCompletionSource marker)
        {
            ReceiveAny(message =>
            {
                received.Enqueue(message);
                if (message is "marker")
                {
                    marker.TrySetResult();
                }
            });
        }
    }

    /// <summary>Counts its constructions, so a test sees whether a node built one from the wire.</summary>
    public sealed class JsonGadget
    {
        private static int _built;

        public JsonGadget() => Interlocked.Increment(ref _built);

        public static int Built => Volatile.Read(ref _built);

        public string Payload { get; set; } = "";
    }

    /// <inheritdoc cref="JsonGadget"/>
    public sealed class ProtoGadget
    {
        private static int _built;

        public ProtoGadget() => Interlocked.Increment(ref _built);

        public static int Built => Volatile.Read(ref _built);
    }

    /// <summary>Sends a message under Akka's protobuf serializer identifier, with its type name as the manifest.</summary>
    public sealed class TypeNamingSerializer(ExtendedActorSystem system) : Serializer(system)
    {
        public override int Identifier => 2;

        public override bool IncludeManifest => true;

        public override byte[] ToBinary(object obj) => [];

        public override object FromBinary(byte[] bytes, Type type) => throw new NotSupportedException();
    }
}
