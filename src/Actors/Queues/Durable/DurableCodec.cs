using System.Buffers.Binary;
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
        var reader = new RecordReader(bytes);
        return Read(ref reader);
    }

    /// <summary>
    /// Applies the record <see cref="Encode"/> wrote to <paramref name="book"/> in one pass over its bytes: accepted items
    /// and completions (nearly every event) go straight into the book with no event object, and each payload stays a slice
    /// of <paramref name="bytes"/> rather than a copy, so a recovery allocates little more than the book's own entries.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a durable queue message.</exception>
    public static void Replay<T>(byte[] bytes, DurableBook<T> book)
    {
        var reader = new RecordReader(bytes);
        ReplayOne(ref reader, book);
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

    private static IDurableQueueMessage Read(ref RecordReader reader) => reader.ReadByte() switch
    {
        (byte)'A' => new ItemAccepted(reader.ReadId(), reader.ReadCount(), reader.ReadInt64(), reader.ReadSlice().ToArray()),
        (byte)'N' => ReadSnapshot(ref reader),
        (byte)'M' => ReadBatch(ref reader),
        var tag => ReadEnd(ref reader, tag),
    };

    /// <summary>The events that end or change an item (every tag but an accept, a snapshot and a batch).</summary>
    private static IDurableQueueMessage ReadEnd(ref RecordReader reader, byte tag) => tag switch
    {
        (byte)'S' => new ItemStarted(reader.ReadId()),
        (byte)'C' => new ItemCompleted(reader.ReadId()),
        (byte)'R' => new ItemRetrying(reader.ReadId(), reader.ReadInt64(), reader.ReadString()),
        (byte)'D' => new ItemDeadLettered(reader.ReadId(), reader.ReadString()),
        (byte)'Q' => new ItemRequeued(reader.ReadId()),
        (byte)'X' => new ItemRemoved(reader.ReadId(), (RemovalReason)reader.ReadByte()),
        _ => throw new InvalidDataException($"Unknown durable queue record tag {tag}"),
    };

    private static DurableBatch ReadBatch(ref RecordReader reader)
    {
        var events = new IDurableQueueMessage[reader.ReadCount()];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = Read(ref reader);
        }

        return new DurableBatch(events);
    }

    private static DurableSnapshot ReadSnapshot(ref RecordReader reader)
    {
        var (nextId, counts) = (reader.ReadId(), ReadCounts(ref reader));
        var items = new StoredItem[reader.ReadCount()];
        for (var i = 0; i < items.Length; i++)
        {
            items[i] = ReadStoredItem(ref reader);
        }

        return new DurableSnapshot(nextId, counts, items);
    }

    private static void ReplayOne<T>(ref RecordReader reader, DurableBook<T> book)
    {
        var tag = reader.ReadByte();
        switch (tag)
        {
            case (byte)'A':
                book.Accepted(reader.ReadId(), reader.ReadCount(), reader.ReadInt64(), reader.ReadSlice());
                break;
            case (byte)'C':
                book.Completed(reader.ReadId());
                break;
            case (byte)'M':
                for (var count = reader.ReadCount(); count > 0; count--)
                {
                    ReplayOne(ref reader, book);
                }

                break;
            case (byte)'N':
                book.Restore(reader.ReadId(), ReadCounts(ref reader));
                for (var count = reader.ReadCount(); count > 0; count--)
                {
                    book.Restored(ReadStoredItem(ref reader));
                }

                break;
            default:
                book.Apply(ReadEnd(ref reader, tag));
                break;
        }
    }

    private static DurableCounts ReadCounts(ref RecordReader reader) => new(reader.ReadId(), reader.ReadId(), reader.ReadId(), reader.ReadId());

    private static StoredItem ReadStoredItem(ref RecordReader reader)
    {
        var id = reader.ReadId();
        var priority = reader.ReadCount();
        var due = reader.ReadInt64();
        var attempts = reader.ReadCount();
        var dead = reader.ReadByte() != 0;
        var error = reader.ReadByte() != 0 ? reader.ReadString() : null;
        return new StoredItem(id, priority, due, attempts, error, dead, reader.ReadSlice());
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

    private static void WriteBytes(BinaryWriter writer, ReadOnlyMemory<byte> bytes)
    {
        writer.Write7BitEncodedInt(bytes.Length);
        writer.Write(bytes.Span);
    }

    /// <summary>
    /// Reads what a <see cref="BinaryWriter"/> wrote, straight from the record's array: no stream, and byte runs handed out
    /// as slices of it. Every read checks the bounds, so a record cut short is an <see cref="InvalidDataException"/>.
    /// </summary>
    private struct RecordReader(byte[] bytes)
    {
        private int _position;

        public byte ReadByte()
        {
            Need(1);
            return bytes[_position++];
        }

        public long ReadInt64()
        {
            Need(sizeof(long));
            var value = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(_position));
            _position += sizeof(long);
            return value;
        }

        /// <summary>A 7-bit encoded 64-bit number (ids, counters), as <see cref="BinaryWriter.Write7BitEncodedInt64"/> wrote it.</summary>
        public long ReadId()
        {
            ulong value = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                var b = ReadByte();
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return (long)value;
                }
            }

            throw new InvalidDataException("A durable queue record has a malformed number");
        }

        /// <summary>A 7-bit encoded 32-bit number (lengths, priorities, tries), as <see cref="BinaryWriter.Write7BitEncodedInt"/> wrote it.</summary>
        public int ReadCount() => unchecked((int)ReadId());

        public ReadOnlyMemory<byte> ReadSlice()
        {
            var length = ReadCount();
            if (length < 0)
            {
                throw new InvalidDataException("A durable queue record has a negative length");
            }

            Need(length);
            var slice = new ReadOnlyMemory<byte>(bytes, _position, length);
            _position += length;
            return slice;
        }

        public string ReadString() => Encoding.UTF8.GetString(ReadSlice().Span);

        private readonly void Need(int count)
        {
            if (bytes.Length - _position < count)
            {
                throw new InvalidDataException("A durable queue record is cut short");
            }
        }
    }
}
