using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;

namespace ActorQueue.Cluster;

/// <summary>
/// Takes the place of Akka's two serializers that build whatever type the sender names: the default JSON serializer
/// (Newtonsoft with type names, bound to <c>System.Object</c>, identifier 1) and the protobuf serializer (which
/// instantiates the type named in the manifest, identifier 2). It writes and reads nothing: a message without an
/// explicit binding cannot leave a cluster node, and a peer's message for identifier 1 or 2 finds no serializer and
/// is dropped (Akka logs "Deserialization failed ... association remains live"). Bound in <c>hocon/cluster.conf</c>.
/// </summary>
public sealed class RefusingSerializer : Serializer
{
    /// <summary>The serializer's identifier (it never appears on the wire: nothing is serialized with it).</summary>
    public const int SerializerId = 7302;

    /// <summary>Creates the serializer (called by Akka).</summary>
    /// <param name="system">The actor system.</param>
    public RefusingSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Creates the serializer with the settings of the serializer it replaces, which it ignores (called by Akka).</summary>
    /// <param name="system">The actor system.</param>
    /// <param name="settings">The replaced serializer's <c>akka.actor.serialization-settings</c>.</param>
    public RefusingSerializer(ExtendedActorSystem system, Config settings)
        : base(system)
    {
        _ = settings;
    }

    /// <inheritdoc />
    public override int Identifier => SerializerId;

    /// <inheritdoc />
    public override bool IncludeManifest => false;

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) =>
        throw new SerializationException(
            $"{obj?.GetType().FullName ?? "null"} has no serializer binding: an ActorQueue cluster node sends only message types bound to a serializer in akka.actor.serialization-bindings (Akka's type-naming JSON serializer is off)");

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, Type type) =>
        throw new SerializationException($"an ActorQueue cluster node does not deserialize {type?.FullName ?? "untyped"} messages without a binding");
}
