using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A producer's put and its re-announcement carry each item's id and payload side by side: arrays of two lengths are
/// refused as they are read. Otherwise the router took the first items and threw at the first id without a payload,
/// in the middle of its message.
/// </summary>
public sealed class ClusterWireEnqueueTests : ActorQueueTestKit
{
    [Fact]
    public void A_put_with_more_ids_than_payloads_is_refused()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(new RemoteEnqueue(1, [2, 3], ["only one"], -1, 10));

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "EN"));
        Assert.Contains("Payloads", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_re_announcement_with_more_payloads_than_ids_is_refused()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(new ProducerAnnounce(1, 10, [2], ["one", "two"]));

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "PA"));
        Assert.Contains("Payloads", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ids_and_payloads_side_by_side_read_back()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);

        var put = Assert.IsType<RemoteEnqueue>(serializer.FromBinary(serializer.ToBinary(new RemoteEnqueue(1, [2, 3], ["a", "b"], -1, 10)), "EN"));
        var announce = Assert.IsType<ProducerAnnounce>(serializer.FromBinary(serializer.ToBinary(new ProducerAnnounce(1, 10, [4], ["c"])), "PA"));

        Assert.Equal(["a", "b"], put.Payloads);
        Assert.Equal(["c"], announce.Payloads);
    }
}
