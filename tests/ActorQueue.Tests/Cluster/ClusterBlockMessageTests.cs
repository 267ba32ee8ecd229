using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>The wire messages of a cluster limiter's blocks (<c>ClusterLimiterBlockTests</c>) through the binary serializer.</summary>
public sealed class ClusterBlockMessageTests : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("block-messages", "akka.loglevel = WARNING\nakka.stdout-loglevel = OFF");

    [Fact]
    public void Block_requests_grants_recalls_returns_and_announced_blocks_round_trip()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)_system);
        var node = new Address("akka.tcp", "sys", "127.0.0.1", 4053);
        object[] messages =
        [
            new RemoteAcquire(7, 8, "agent") { Block = true },
            new LimiterEnvelope("llm", 3, null, new RemoteAcquire(7, 9, "agent") { Block = true }),
            new RemoteGranted(1, 2, 3, 0) { Block = 5 },
            new BlockRecall(42),
            new BlockReturn(42, 3),
            new LimiterAnnounce(42, node, [1], [], []) { HeldPermits = [1], BlockPermits = 4 },
        ];

        foreach (var message in messages)
        {
            var copy = serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
            Assert.Equal(serializer.ToBinary(message), serializer.ToBinary(copy)); // every field survived
        }

        Assert.True(((RemoteAcquire)serializer.FromBinary(serializer.ToBinary(messages[0]), "AQ")).Block);
        Assert.Equal(5, ((RemoteGranted)serializer.FromBinary(serializer.ToBinary(messages[2]), "GR")).Block);
        Assert.Equal(3, ((BlockReturn)serializer.FromBinary(serializer.ToBinary(messages[4]), "BT")).Permits);
        Assert.Equal(4, ((LimiterAnnounce)serializer.FromBinary(serializer.ToBinary(messages[5]), "LA")).BlockPermits);
    }

    [Fact]
    public void A_peers_negative_block_count_is_refused()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)_system);
        var bytes = serializer.ToBinary(new BlockReturn(42, -3));

        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(bytes, "BT"));
        Assert.Contains("-3", error.Message);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _system.Terminate();
}
