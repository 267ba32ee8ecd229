using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A limiter's or a queue's envelope carries one protocol message, never another envelope: a peer's envelope inside an
/// envelope is refused, so a frame of nested envelopes (nine bytes a level, some fourteen thousand levels in one
/// 128 kB frame) cannot drive the reader's recursion into a stack overflow, which no handler catches.
/// </summary>
public sealed class ClusterWireNestingTests : ActorQueueTestKit
{
    [Theory]
    [InlineData("QE", 2)]
    [InlineData("QE", 14_000)] // on 18cbf0e: the test host crashed with a stack overflow
    [InlineData("LE", 2)]
    [InlineData("LE", 5_000)]
    public void An_envelope_inside_an_envelope_is_refused(string manifest, int depth)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
        {
            for (var level = 0; level < depth; level++)
            {
                writer.Write("q"); // the queue's or the limiter's name
                writer.Write(10); // a queue's capacity, a limiter's max running
                if (manifest == "LE")
                {
                    writer.Write(false); // no bound on waiters
                    writer.Write((byte)0); // reject a newcomer when full
                    writer.Write(0L); // no idle timeout
                    writer.Write(false); // no rates
                }

                writer.Write(manifest); // the nested message's manifest: another envelope
            }

            writer.Write(1L); // the innermost message, an AgentHello: an incarnation
        }

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(stream.ToArray(), manifest));
        Assert.Contains("envelope", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_envelope_with_a_protocol_message_inside_still_reads()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(new QueueEnvelope("q", 10, new AgentHello(3)));

        var envelope = Assert.IsType<QueueEnvelope>(serializer.FromBinary(bytes, "QE"));
        Assert.Equal(new AgentHello(3), envelope.Message);
    }
}
