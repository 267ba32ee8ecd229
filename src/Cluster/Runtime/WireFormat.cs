using System.Runtime.Serialization;

namespace ActorQueue.Cluster;

/// <summary>
/// The primitives of <see cref="ClusterMessageSerializer"/>'s binary format: arrays as a length and their elements,
/// nullable values after a presence flag, enums as one byte. What a reader takes from a peer is checked here before it
/// is used (an enum beyond its range, a negative count, an array longer than the message): a peer's bytes are not
/// trusted, even a member's (docs/SECURITY.md).
/// </summary>
internal static class WireFormat
{
    /// <summary>Reads an enum sent as a byte, refusing values beyond <paramref name="max"/> (a peer's bytes are not trusted).</summary>
    public static TEnum ReadEnum<TEnum>(BinaryReader r, byte max)
        where TEnum : struct, Enum
    {
        var value = r.ReadByte();
        return value <= max
            ? (TEnum)Enum.ToObject(typeof(TEnum), value)
            : throw new SerializationException($"{typeof(TEnum).Name} has no value {value}");
    }

    public static void WriteLongs(BinaryWriter w, long[] values) => WriteArray(w, values, w.Write);

    public static void WriteInts(BinaryWriter w, int[] values) => WriteArray(w, values, w.Write);

    public static void WriteStrings(BinaryWriter w, string[] values) => WriteArray(w, values, w.Write);

    public static long[] ReadLongs(BinaryReader r) => ReadArray(r, r.ReadInt64);

    public static int[] ReadInts(BinaryReader r) => ReadArray(r, r.ReadInt32);

    public static string[] ReadStrings(BinaryReader r) => ReadArray(r, r.ReadString);

    public static bool[] ReadBools(BinaryReader r) => ReadArray(r, r.ReadBoolean);

    /// <summary>An array as its length, then its elements.</summary>
    public static void WriteArray<T>(BinaryWriter w, T[] values, Action<T> write)
    {
        w.Write(values.Length);
        foreach (var value in values)
        {
            write(value);
        }
    }

    /// <summary>
    /// An array as <see cref="WriteArray"/> wrote it. Every element takes at least a byte, so a length beyond the bytes
    /// left is a peer's lie and is refused before anything is allocated: a few bytes claiming 20 million elements made
    /// the node allocate 160 MB, and a negative length threw an <see cref="OverflowException"/>.
    /// </summary>
    public static T[] ReadArray<T>(BinaryReader r, Func<T> read)
    {
        var length = r.ReadInt32();
        var left = r.BaseStream.Length - r.BaseStream.Position;
        if (length < 0 || length > left)
        {
            throw new SerializationException($"an array of {length} elements with {left} bytes left in the message");
        }

        var values = new T[length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = read();
        }

        return values;
    }


    public static void WriteNullable(BinaryWriter w, int? value)
    {
        w.Write(value.HasValue);
        if (value is { } v)
        {
            w.Write(v);
        }
    }

    public static void WriteNullable(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null)
        {
            w.Write(value);
        }
    }

    public static void WriteNullable(BinaryWriter w, long? value)
    {
        w.Write(value.HasValue);
        if (value is { } v)
        {
            w.Write(v);
        }
    }

    /// <summary>A count of permits: a peer's negative one is refused here, not taken as a give-back of the other sign.</summary>
    public static int ReadCount(BinaryReader r)
    {
        var count = r.ReadInt32();
        return count >= 0 ? count : throw new SerializationException($"a permit count must be >= 0, got {count}");
    }

    /// <summary>A bound (a limit, a queue bound) or a token count that cannot be negative: a peer's negative one is refused here.</summary>
    public static long NonNegative(long value, string field) =>
        value >= 0 ? value : throw new SerializationException($"{field} must be >= 0, got {value}");

    /// <summary>A limit that must be at least 1 (a new gatekeeper's running limit); a peer's lower one is refused here.</summary>
    public static int AtLeastOne(int value, string field) =>
        value >= 1 ? value : throw new SerializationException($"{field} must be >= 1, got {value}");

    /// <summary>A nullable bound that cannot be negative (a resize's or a limit's); a peer's negative one is refused here.</summary>
    public static int? ReadNullableNonNegative(BinaryReader r, string field) =>
        ReadNullableInt(r) is { } value ? (int)NonNegative(value, field) : null;

    public static int? ReadNullableInt(BinaryReader r) => r.ReadBoolean() ? r.ReadInt32() : null;

    public static long? ReadNullableLong(BinaryReader r) => r.ReadBoolean() ? r.ReadInt64() : null;

    public static string? ReadNullableString(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;
}
