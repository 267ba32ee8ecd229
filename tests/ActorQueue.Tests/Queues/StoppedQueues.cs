using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Queues;

/// <summary>Queues brought to a known stopped state, for the tests of what disposal does with the items left.</summary>
internal static class StoppedQueues
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A started queue named "orders" with one worker held inside item 1 and items 2..5 queued behind it, then stopped:
    /// 2..5 stay queued. The worker's error handler is <paramref name="errorHandler"/>; with <paramref name="logger"/> the queue logs there.
    /// </summary>
    public static async Task<WorkQueue<int>> WithFourQueuedAsync(ActorSystem system, Func<Exception, int, Task>? errorHandler, ILogger? logger = null)
    {
        var queue = logger is null
            ? new WorkQueue<int>(maxSize: 10, concurrencyLimit: 1, system: system, name: "orders")
            : new WorkQueue<int>(10, null, 1, logger, system, "orders");
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(
            async (item, _) =>
            {
                if (item == 1)
                {
                    inFirst.SetResult();
                    await gate.Task;
                }
            },
            numWorkers: 1,
            errorHandler: errorHandler);
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);
        for (var item = 2; item <= 5; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        var stop = queue.StopAsync();
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        gate.SetResult();
        await stop.WaitAsync(Bound);
        Assert.Equal(4, queue.Size);
        return queue;
    }
}
