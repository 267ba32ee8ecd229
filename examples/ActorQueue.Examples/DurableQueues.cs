// snippet: durable-queue
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public sealed record Order(long Id, string Customer);

public static class DurableQueues
{
    public static async Task RunAsync()
    {
        // snippet: durable-queue
        var queue = new BoundedQueue<Order>(1000, new QueueDurability { StoragePath = "orders.db" }, name: "orders");
        await queue.StartAsync();   // recovers what the last process left, then processes
        // end snippet
        await queue.DisposeAsync();
    }
}
