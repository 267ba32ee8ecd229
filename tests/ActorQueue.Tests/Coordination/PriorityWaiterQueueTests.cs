using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

public class PriorityWaiterQueueTests
{
    private static List<string> Drain(PriorityWaiterQueue queue)
    {
        var names = new List<string>();
        while (queue.Head is { } head)
        {
            queue.Remove(head);
            names.Add(head.Source);
        }

        return names;
    }

    [Fact]
    public void Waiters_leave_by_priority_then_arrival()
    {
        var queue = new PriorityWaiterQueue();
        foreach (var (name, priority) in new[] { ("a", 0), ("b", 5), ("c", -1), ("d", 5), ("e", 0) })
        {
            queue.Enqueue(new TestWaiter(name, priority: priority));
        }

        Assert.Equal(5, queue.Count);
        Assert.Equal(["b", "d", "a", "e", "c"], Drain(queue));
    }

    [Fact]
    public void Removing_from_the_middle_keeps_the_others_in_order()
    {
        var queue = new PriorityWaiterQueue();
        var waiters = Enumerable.Range(1, 5).Select(i => new TestWaiter($"w{i}", priority: i % 2)).ToArray();
        foreach (var waiter in waiters)
        {
            queue.Enqueue(waiter);
        }

        Assert.True(queue.Remove(waiters[2]));
        Assert.False(queue.Remove(waiters[2]));
        Assert.Equal(["w1", "w5", "w2", "w4"], Drain(queue));
    }

    [Fact]
    public void An_empty_level_is_dropped_and_level_zero_is_kept()
    {
        var queue = new PriorityWaiterQueue();
        for (var priority = 1; priority <= 1000; priority++)
        {
            var waiter = new TestWaiter($"p{priority}", priority: priority);
            queue.Enqueue(waiter);
            queue.Remove(waiter);
        }

        queue.Enqueue(new TestWaiter("zero"));

        Assert.Equal(1, queue.Count);
        Assert.Equal("zero", queue.Head!.Source);
        Assert.False(queue.HasAtOrAbove(1));
        Assert.True(queue.HasAtOrAbove(0));
        Assert.Equal(1, queue.LevelCount);
    }

    [Fact]
    public void The_newest_of_the_lowest_priority_is_the_one_to_evict()
    {
        var queue = new PriorityWaiterQueue();
        foreach (var (name, priority) in new[] { ("old-low", 1), ("high", 3), ("new-low", 1), ("mid", 2) })
        {
            queue.Enqueue(new TestWaiter(name, priority: priority));
        }

        Assert.Equal(1, queue.LowestPriority);
        Assert.Equal("new-low", queue.NewestOfLowest!.Source);
    }

    [Fact]
    public void A_waiter_of_another_queue_is_not_contained_nor_removed()
    {
        var queue = new PriorityWaiterQueue();
        var condition = new WaiterQueue<PermitWaiter>();
        var elsewhere = new TestWaiter("elsewhere");
        condition.Enqueue(elsewhere);

        Assert.False(queue.Contains(elsewhere));
        Assert.False(queue.Remove(elsewhere));
        Assert.Equal(1, condition.Count);
    }
}
