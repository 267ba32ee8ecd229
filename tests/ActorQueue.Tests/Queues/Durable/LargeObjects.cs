using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// Whether an object holds an array on the large object heap: one of 85,000 bytes or more. Its size is computed (elements
/// times their size, plus the array's header), so the check does not depend on when collections run.
/// </summary>
internal static class LargeObjects
{
    private const int Threshold = 85_000;

    /// <summary>Fails naming the first array of <see cref="Threshold"/> bytes or more reachable from <paramref name="root"/> through its fields (three objects deep, and into arrays of arrays).</summary>
    public static void AssertNoneReachable(object root)
    {
        var arrays = new List<Array>();
        Walk(root, depth: 4, arrays, new HashSet<object>(ReferenceEqualityComparer.Instance));
        Assert.NotEmpty(arrays);
        var large = arrays.FirstOrDefault(array => Bytes(array) >= Threshold);
        Assert.True(large is null, $"an array {large?.GetType().Name} of {(large is null ? 0 : Bytes(large)):N0} bytes is on the large object heap");
    }

    /// <summary>Fails naming the first of <paramref name="arrays"/> of <see cref="Threshold"/> bytes or more (a type's own list of what it holds: the walk from a root does not enter arrays of structs).</summary>
    public static void AssertNone(IEnumerable<Array> arrays)
    {
        var all = arrays.ToList();
        Assert.NotEmpty(all);
        var large = all.FirstOrDefault(array => Bytes(array) >= Threshold);
        Assert.True(large is null, $"an array {large?.GetType().Name} of {(large is null ? 0 : Bytes(large)):N0} bytes is on the large object heap");
    }

    /// <summary>An array's size in memory: its elements and a 24-byte header (64-bit).</summary>
    public static long Bytes(Array array)
    {
        var element = array.GetType().GetElementType()!;
        var size = element.IsValueType
            ? (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(element).Invoke(null, null)!
            : IntPtr.Size;
        return 24 + (array.LongLength * size);
    }

    private static void Walk(object value, int depth, List<Array> arrays, HashSet<object> seen)
    {
        if (depth < 0 || value is string or Delegate or Type || !seen.Add(value))
        {
            return;
        }

        if (value is Array array)
        {
            arrays.Add(array);
            if (array.GetType().GetElementType()!.IsArray)
            {
                foreach (var inner in array)
                {
                    if (inner is not null)
                    {
                        Walk(inner, depth, arrays, seen);
                    }
                }
            }

            return;
        }

        for (var type = value.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
            {
                if (!field.FieldType.IsValueType && field.GetValue(value) is { } inner)
                {
                    Walk(inner, depth - 1, arrays, seen);
                }
            }
        }
    }
}
