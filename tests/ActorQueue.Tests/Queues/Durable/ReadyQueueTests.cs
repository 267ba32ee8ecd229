using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>The durable book's ready queue alone: run order, items leaving from the middle, going back in, and the rebuild.</summary>
public class ReadyQueueTests
{
    private static List<long> TakeAll(ReadyQueue<Item> queue)
    {
        var taken = new List<long>();
        while (queue.Count > 0)
        {
            taken.Add(queue.TakeFirst().Id);
        }

        return taken;
    }

    [Fact]
    public void Built_in_any_order_it_hands_out_higher_priority_first_then_lower_id()
    {
        Item[] items = [new(4), new(2, priority: 5), new(1), new(5, priority: -1), new(3, priority: 5)];

        var queue = ReadyQueue<Item>.Build(items, items.Length);

        Assert.Equal(5, queue.Count);
        Assert.Equal([2, 3, 1, 4, 5], TakeAll(queue));
    }

    [Fact]
    public void An_item_taken_out_of_the_middle_is_never_handed_out_and_one_put_back_is_handed_out_once_at_its_place()
    {
        var items = Enumerable.Range(1, 6).Select(id => new Item(id)).ToArray();
        var queue = ReadyQueue<Item>.Build(items, items.Length);

        queue.Remove(items[2]); // 3 leaves (drained)
        queue.Remove(items[3]); // 4 leaves (running) ...
        queue.Add(items[3]); // ... and comes back: its old place and its new one must not both count

        Assert.Equal(5, queue.Count);
        Assert.Equal([1, 2, 4, 5, 6], queue.InOrder().Select(item => item.Id));
        Assert.Equal([1, 2, 4, 5, 6], TakeAll(queue));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void After_most_items_left_from_the_middle_the_rest_keep_their_order()
    {
        var items = Enumerable.Range(1, 1_000).Select(id => new Item(id, priority: id % 3)).ToArray();
        var queue = ReadyQueue<Item>.Build(Enumerable.Reverse(items), items.Length);

        foreach (var item in items.Where(item => item.Id % 10 != 0))
        {
            queue.Remove(item); // enough to rebuild the heap from the live items more than once
        }

        var expected = items.Where(item => item.Id % 10 == 0).OrderByDescending(item => item.Priority).ThenBy(item => item.Id).Select(item => item.Id).ToList();
        Assert.Equal(expected, queue.InOrder().Select(item => item.Id));
        Assert.Equal(expected, TakeAll(queue));
    }

    [Fact]
    public void A_cleared_queue_is_empty_and_takes_new_items()
    {
        var queue = ReadyQueue<Item>.Build([new Item(1), new Item(2)], 2);

        queue.Clear();
        queue.Add(new Item(7));

        Assert.Equal([7], TakeAll(queue));
    }

    internal sealed class Item(long id, int priority = 0) : IReadyEntry
    {
        public long Id { get; } = id;

        public int Priority { get; } = priority;

        public int ReadyStamp { get; set; }
    }
}
