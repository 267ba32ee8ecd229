using System.Text;

namespace ActorQueue.Actors;

/// <summary>
/// Writes the durable router's events and snapshots compactly: a one-letter tag and the fields in a fixed order, with
/// no type names on the wire or on disk, so renaming a CLR type never breaks a journal. The router persists the bytes
/// themselves (Akka's byte-array serializer stores them as they are), so no serializer binding is needed in the actor
/// system a queue runs in.
/// </summary>
internal static class DurableCodec
{
    /// <summary>The message as its tag and fields.</summary>
    public static byte[] Encode(IDurableQueueMessage message)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Tag(message));
            Write(writer, message);
        }

        return stream.ToArray();
    }

    /// <summary>The message <see cref="Encode"/> wrote.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a durable queue message.</exception>
    public static IDurableQueueMessage Decode(byte[] bytes)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        try
        {
            return Read(reader);
        }
        catch (EndOfStreamException error)
        {
            throw new InvalidDataException("A durable queue record is cut short", error);
        }
    }

    /// <summary>The one-letter tag that tells the record's kind.</summary>
    public static byte Tag(IDurableQueueMessage message) => message switch
    {
        ItemAccepted => (byte)'A',
        ItemStarted => (byte)'S',
        ItemCompleted => (byte)'C',
        ItemRetrying => (byte)'R',
        ItemDeadLettered => (byte)'D',
        ItemRequeued => (byte)'Q',
        ItemRemoved => (byte)'X',
        DurableSnapshot => (byte)'N',
        DurableBatch => (byte)'M',
        _ => throw new ArgumentException($"{message.GetType()} is not a durable queue message", nameof(message)),
    };

    private static void Write(BinaryWriter writer, object obj)
    {
        switch (obj)
        {
            case ItemAccepted a:
                writer.Write7BitEncodedInt64(a.Id);
                writer.Write7BitEncodedInt(a.Priority);
                writer.Write(a.DueTicks);
                WriteBytes(writer, a.Payload);
                break;
            case ItemStarted s:
                writer.Write7BitEncodedInt64(s.Id);
                break;
            case ItemCompleted c:
                writer.Write7BitEncodedInt64(c.Id);
                break;
            case ItemRetrying r:
                writer.Write7BitEncodedInt64(r.Id);
                writer.Write(r.DueTicks);
                writer.Write(r.Error);
                break;
            case ItemDeadLettered d:
                writer.Write7BitEncodedInt64(d.Id);
                writer.Write(d.Error);
                break;
            case ItemRequeued q:
                writer.Write7BitEncodedInt64(q.Id);
                break;
            case ItemRemoved x:
                writer.Write7BitEncodedInt64(x.Id);
                writer.Write((byte)x.Reason);
                break;
            case DurableSnapshot n:
                WriteSnapshot(writer, n);
                break;
            case DurableBatch m:
                writer.Write7BitEncodedInt(m.Events.Count);
                foreach (var inner in m.Events)
                {
                    writer.Write(Tag(inner));
                    Write(writer, inner);
                }

                break;
            default:
                throw new ArgumentException($"{obj.GetType()} is not a durable queue message", nameof(obj));
        }
    }

    private static IDurableQueueMessage Read(BinaryReader reader) => reader.ReadByte() switch
    {
        (byte)'A' => new ItemAccepted(reader.Read7BitEncodedInt64(), reader.Read7BitEncodedInt(), reader.ReadInt64(), ReadBytes(reader)),
        (byte)'S' => new ItemStarted(reader.Read7BitEncodedInt64()),
        (byte)'C' => new ItemCompleted(reader.Read7BitEncodedInt64()),
        (byte)'R' => new ItemRetrying(reader.Read7BitEncodedInt64(), reader.ReadInt64(), reader.ReadString()),
        (byte)'D' => new ItemDeadLettered(reader.Read7BitEncodedInt64(), reader.ReadString()),
        (byte)'Q' => new ItemRequeued(reader.Read7BitEncodedInt64()),
        (byte)'X' => new ItemRemoved(reader.Read7BitEncodedInt64(), (RemovalReason)reader.ReadByte()),
        (byte)'N' => ReadSnapshot(reader),
        (byte)'M' => ReadBatch(reader),
        var tag => throw new InvalidDataException($"Unknown durable queue record tag {tag}"),
    };

    private static DurableBatch ReadBatch(BinaryReader reader)
    {
        var events = new IDurableQueueMessage[reader.Read7BitEncodedInt()];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = Read(reader);
        }

        return new DurableBatch(events);
    }

    private static void WriteSnapshot(BinaryWriter writer, DurableSnapshot snapshot)
    {
        writer.Write7BitEncodedInt64(snapshot.NextId);
        writer.Write7BitEncodedInt64(snapshot.Counts.Enqueued);
        writer.Write7BitEncodedInt64(snapshot.Counts.Processed);
        writer.Write7BitEncodedInt64(snapshot.Counts.Errors);
        writer.Write7BitEncodedInt64(snapshot.Counts.Drained);
        writer.Write7BitEncodedInt(snapshot.Items.Count);
        foreach (var item in snapshot.Items)
        {
            writer.Write7BitEncodedInt64(item.Id);
            writer.Write7BitEncodedInt(item.Priority);
            writer.Write(item.DueTicks);
            writer.Write7BitEncodedInt(item.Attempts);
            writer.Write(item.Dead);
            writer.Write(item.LastError is not null);
            if (item.LastError is not null)
            {
                writer.Write(item.LastError);
            }

            WriteBytes(writer, item.Payload);
        }
    }

    private static DurableSnapshot ReadSnapshot(BinaryReader reader)
    {
        var nextId = reader.Read7BitEncodedInt64();
        var counts = new DurableCounts(reader.Read7BitEncodedInt64(), reader.Read7BitEncodedInt64(), reader.Read7BitEncodedInt64(), reader.Read7BitEncodedInt64());
        var items = new StoredItem[reader.Read7BitEncodedInt()];
        for (var i = 0; i < items.Length; i++)
        {
            var id = reader.Read7BitEncodedInt64();
            var priority = reader.Read7BitEncodedInt();
            var due = reader.ReadInt64();
            var attempts = reader.Read7BitEncodedInt();
            var dead = reader.ReadBoolean();
            var error = reader.ReadBoolean() ? reader.ReadString() : null;
            items[i] = new StoredItem(id, priority, due, attempts, error, dead, ReadBytes(reader));
        }

        return new DurableSnapshot(nextId, counts, items);
    }

    private static void WriteBytes(BinaryWriter writer, byte[] bytes)
    {
        writer.Write7BitEncodedInt(bytes.Length);
        writer.Write(bytes);
    }

    private static byte[] ReadBytes(BinaryReader reader) => reader.ReadBytes(reader.Read7BitEncodedInt());
}
