using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// The durable book's table of entries by id (<see cref="IdTable{TValue}"/>, round 50): a dictionary's behaviour, its
/// entries listed in id order, pages let go when empty, and no array of it on the large object heap.
/// </summary>
public class IdTableRound50Tests
{
    [Fact]
    public void It_behaves_as_a_dictionary_under_random_adds_and_removes_and_lists_its_entries_in_id_order()
    {
        var random = new Random(50);
        var table = new IdTable<string>();
        var model = new Dictionary<long, string>();
        var next = 1L;
        for (var step = 0; step < 20_000; step++)
        {
            if (model.Count == 0 || random.Next(3) != 0)
            {
                var id = random.Next(10) == 0 ? random.NextInt64(-500, next + 500) : next++; // mostly new ids, some anywhere (negative too)
                var added = model.TryAdd(id, "v" + id);
                if (added)
                {
                    table.Add(id, "v" + id);
                }
                else
                {
                    Assert.Throws<ArgumentException>(() => table.Add(id, "again"));
                }
            }
            else
            {
                var id = random.Next(4) == 0 ? random.NextInt64(-500, next + 500) : model.Keys.ElementAt(random.Next(model.Count));
                Assert.Equal(model.Remove(id), table.Remove(id));
            }

            var probe = random.NextInt64(-600, next + 600);
            Assert.Equal(model.TryGetValue(probe, out var expected), table.TryGetValue(probe, out var actual));
            Assert.Equal(expected, actual);
            Assert.Equal(model.Count, table.Count);
        }

        Assert.Equal(model.OrderBy(pair => pair.Key).Select(pair => pair.Value), table.Values); // each value names its id
    }

    [Fact]
    public void A_missing_id_is_a_key_not_found_error_naming_it()
    {
        var table = new IdTable<string>();
        table.Add(1, "one");

        var error = Assert.Throws<KeyNotFoundException>(() => table[65]);

        Assert.Contains("65", error.Message, StringComparison.Ordinal);
        Assert.Equal("one", table[1]);
    }

    [Fact]
    public void Pages_left_empty_are_let_go_and_a_cleared_table_is_empty()
    {
        var table = new IdTable<string>();
        for (var id = 1L; id <= 10 * IdTable<string>.PageSize; id++)
        {
            table.Add(id, "v");
        }

        for (var id = 1L; id <= 9 * IdTable<string>.PageSize; id++)
        {
            table.Remove(id);
        }

        Assert.InRange(table.Arrays().Count(), 1, 2); // the last page or two of ids, not ten
        table.Clear();
        Assert.Equal(0, table.Count);
        Assert.Empty(table.Values);
        Assert.Empty(table.Arrays());
        Assert.False(table.TryGetValue(10L * IdTable<string>.PageSize, out _)); // the page the table used last is forgotten too
    }

    /// <summary>Mutant caught: pages of 16,384 ids (128 KiB arrays): "an array of 131,096 bytes".</summary>
    [Fact]
    public void A_hundred_thousand_entries_leave_no_array_on_the_large_object_heap()
    {
        var table = new IdTable<object>();
        for (var id = 1L; id <= 100_000; id++)
        {
            table.Add(id, table);
        }

        LargeObjects.AssertNoneReachable(table);
        LargeObjects.AssertNone(table.Arrays()); // every page, not only those the walk reaches
    }
}
