using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// A durable book loaded with 100,000 waiting items (as a recovery leaves it) holds no array on the large object heap: on
/// the bench's machine, the arrays it held there made most recoveries pay a full collection (round 50 of BENCHMARKS.md).
/// </summary>
public class DurableBookLargeObjectsRound50Tests
{
    /// <summary>
    /// Failed before (entries in a <c>Dictionary&lt;long, Entry&gt;</c>, the run order in a <c>PriorityQueue</c>):
    /// "an array Int32[] of 625,772 bytes is on the large object heap" (the dictionary's buckets; its entries, 3.1 MB, too). Mutants caught: the ready queue in chunks of
    /// 8,192 slots ("Slot[] of 196,632 bytes"); the table in pages of 16,384 ids.
    /// </summary>
    [Fact]
    public void A_recovered_book_of_a_hundred_thousand_items_holds_no_array_on_the_large_object_heap()
    {
        var book = new DurableBook<int>();
        for (var id = 1L; id <= 100_000; id++)
        {
            book.Accepted(id, priority: (int)(id % 3), dueTicks: 0, ReadOnlyMemory<byte>.Empty);
        }

        book.EndLoading();

        Assert.Equal(100_000, book.Size);
        LargeObjects.AssertNoneReachable(book);
    }
}
