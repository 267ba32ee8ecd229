using System.Text;

namespace ActorQueue.Cluster;

/// <summary>
/// A durable distributed queue's item as its journal keeps it: the producer's serialized actor path (with its uid, so
/// a later producer at the same path is a different one) and its id for the item, the item's System.Text.Json text,
/// and the producer's trace context. Written field by field, no type names on disk.
/// </summary>
internal sealed record StoredClusterItem(string Producer, long ItemId, string Payload, ItemTrace? Trace)
{
    /// <summary>The key the router dedupes re-announced items by.</summary>
    public (string Producer, long ItemId) Key => (Producer, ItemId);

    public static byte[] Encode(StoredClusterItem item)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(item.Producer);
            writer.Write7BitEncodedInt64(item.ItemId);
            writer.Write(item.Payload);
            ItemTrace.Write(writer, item.Trace);
        }

        return stream.ToArray();
    }

    /// <exception cref="InvalidDataException">The bytes are not a stored item.</exception>
    public static StoredClusterItem Decode(byte[] bytes)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        try
        {
            return new StoredClusterItem(reader.ReadString(), reader.Read7BitEncodedInt64(), reader.ReadString(), ItemTrace.Read(reader));
        }
        catch (EndOfStreamException error)
        {
            throw new InvalidDataException("A distributed queue's stored item is cut short", error);
        }
    }
}
