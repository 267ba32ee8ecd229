using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

public class WaiterQueueTests
{
    private sealed class Waiter(int id) : WaiterNode<Waiter>
    {
        public int Id { get; } = id;
    }

    private static List<int> Drain(WaiterQueue<Waiter> queue)
    {
        var ids = new List<int>();
        queue.DrainAll(w => ids.Add(w.Id));
        return ids;
    }

    [Fact]
    public void Waiters_leave_in_arrival_order()
    {
        var queue = new WaiterQueue<Waiter>();
        for (var i = 1; i <= 5; i++)
        {
            queue.Enqueue(new Waiter(i));
        }

        Assert.Equal([1, 2, 3, 4, 5], Drain(queue));
        Assert.True(queue.IsEmpty);
    }

    [Fact]
    public void Removing_a_waiter_from_the_middle_keeps_the_others_in_order()
    {
        var queue = new WaiterQueue<Waiter>();
        var waiters = Enumerable.Range(1, 5).Select(i => new Waiter(i)).ToArray();
        foreach (var w in waiters)
        {
            queue.Enqueue(w);
        }

        Assert.True(queue.Remove(waiters[2]));
        Assert.True(queue.Remove(waiters[0]));
        Assert.True(queue.Remove(waiters[4]));
        Assert.Equal(2, queue.Count);
        Assert.Equal([2, 4], Drain(queue));
    }

    [Fact]
    public void Removing_a_waiter_twice_reports_it_gone_and_changes_nothing()
    {
        var queue = new WaiterQueue<Waiter>();
        var first = new Waiter(1);
        queue.Enqueue(first);
        queue.Enqueue(new Waiter(2));

        Assert.True(queue.Remove(first));
        Assert.False(queue.Remove(first));
        Assert.False(first.IsQueued);
        Assert.Equal([2], Drain(queue));
    }

    [Fact]
    public void A_waiter_stands_in_one_queue_at_a_time()
    {
        var queue = new WaiterQueue<Waiter>();
        var other = new WaiterQueue<Waiter>();
        var waiter = new Waiter(1);
        queue.Enqueue(waiter);

        Assert.Throws<InvalidOperationException>(() => other.Enqueue(waiter));
        Assert.False(other.Remove(waiter));
        Assert.Equal(1, queue.Count);
    }
}
