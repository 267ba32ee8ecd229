using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A peer's bytes are not trusted, even an authenticated member's: an array's length on the wire is checked against the
/// bytes that are left before anything is allocated, so a few bytes cannot make a node allocate hundreds of megabytes.
/// </summary>
public sealed class ClusterWireArrayLengthTests : ActorQueueTestKit
{
    [Theory]
    [InlineData("EA", 20_000_000)] // EnqueueAccepted: an array of item ids first
    [InlineData("EA", int.MaxValue)]
    [InlineData("EA", -1)]
    [InlineData("EA", 1)] // one past the bytes left (none): the boundary, refused as a lie rather than read to the end of the stream
    [InlineData("EN", 5_000_000)] // RemoteEnqueue: a producer id, then the item ids
    public void An_array_longer_than_the_message_is_refused_before_it_is_allocated(string manifest, int length)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
        {
            if (manifest == "EN")
            {
                writer.Write(7L); // the producer
            }

            writer.Write(length); // and no element after it
        }

        var bytes = stream.ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, manifest));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains(length.ToString(System.Globalization.CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
        Assert.True(allocated < 1_000_000, $"{allocated} bytes allocated for a {bytes.Length}-byte message");
    }
}
