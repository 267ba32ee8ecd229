using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A put's wait for space is checked as it is read. A producer sends −1 (until space) or 0 to 2^32 − 2 ms (a timeout is
/// normalised to that before it is sent); a peer's longer one reached <c>DistributedRouterActor.Enqueue</c>, whose
/// <c>TimeSpan.FromMilliseconds(timeoutMs)</c> threw in the middle of the router's message: a restart of the router,
/// which loses a queue kept in memory.
/// </summary>
public sealed class ClusterWirePutTimeoutTests : ActorQueueTestKit
{
    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(4_294_967_295L)] // one past the longest finite wait
    [InlineData(-2L)]
    public void A_put_timeout_no_producer_sends_is_refused_as_it_is_read(long timeoutMs)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(new RemoteEnqueue(1, [7], ["{}"], timeoutMs, 10));

        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "EN"));
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(0L)]
    [InlineData(4_294_967_294L)] // Timeouts.LongestFinite
    public void A_put_timeout_a_producer_sends_reads_back(long timeoutMs)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(new RemoteEnqueue(1, [7], ["{}"], timeoutMs, 10));

        Assert.Equal(timeoutMs, Assert.IsType<RemoteEnqueue>(serializer.FromBinary(bytes, "EN")).TimeoutMs);
    }
}
