using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;
using ActorQueue.Actors;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;

namespace ActorQueue.Bench;

/// <summary>The queue scenarios' loops: ActorQueue's put, batch and backlog, and its peers' (Channels, Dataflow, Akka.Streams).</summary>
internal static partial class Scenarios
{
    private static async Task<double> ActorQueuePut(ActorSystem system, int items, int workers, Func<int, Task> work)
    {
        await using var queue = new BoundedQueue<int>(100, Timeout.InfiniteTimeSpan, system: system);
        await queue.StartAsync();
        await queue.StartWorkersAsync(work, workers);
        return await Runner.OpsPerSecond(items, async () =>
        {
            for (var i = 0; i < items; i++)
            {
                await queue.PutAsync(i);
            }

            await queue.JoinAsync();
        });
    }

    private static async Task<double> ActorQueueBatch(ActorSystem system, int items, int workers)
    {
        await using var queue = new WorkQueue<int>(100, Timeout.InfiniteTimeSpan, system: system);
        return await Runner.OpsPerSecond(items, () => queue.BatchProcessAsync(Enumerable.Range(0, items), _ => Task.CompletedTask, workers));
    }

    /// <summary>A queue already holding <paramref name="size"/> items: how fast are they put and then dispatched.</summary>
    private static async Task<double> ActorQueueBacklog(ActorSystem system, int size)
    {
        await using var queue = new BoundedQueue<int>(size, Timeout.InfiniteTimeSpan, system: system);
        await queue.StartAsync();
        return await Runner.OpsPerSecond(size, async () =>
        {
            for (var i = 0; i < size; i++)
            {
                await queue.PutAsync(i);
            }

            await queue.StartWorkersAsync(_ => Task.CompletedTask, Workers);
            await queue.JoinAsync();
        });
    }

    private static Task<double> ChannelPut(int items, int readers, Func<int, Task> work)
    {
        var channel = Channel.CreateBounded<int>(new BoundedChannelOptions(100) { SingleWriter = true });
        return Runner.OpsPerSecond(items, async () =>
        {
            var consumers = Enumerable.Range(0, readers).Select(_ => Task.Run(async () =>
            {
                await foreach (var item in channel.Reader.ReadAllAsync())
                {
                    await work(item);
                }
            })).ToArray();
            for (var i = 0; i < items; i++)
            {
                await channel.Writer.WriteAsync(i);
            }

            channel.Writer.Complete();
            await Task.WhenAll(consumers);
        });
    }

    private static Task<double> DataflowPut(int items, int parallelism, Func<int, Task> work)
    {
        var block = new ActionBlock<int>(work, new ExecutionDataflowBlockOptions { BoundedCapacity = 100, MaxDegreeOfParallelism = parallelism });
        return Runner.OpsPerSecond(items, async () =>
        {
            for (var i = 0; i < items; i++)
            {
                await block.SendAsync(i);
            }

            block.Complete();
            await block.Completion;
        });
    }

    private static Task<double> AkkaStreamsPut(IMaterializer materializer, int items, int parallelism)
    {
        var (queue, done) = Source.Queue<int>(100, OverflowStrategy.Backpressure)
            .SelectAsync(parallelism, Task.FromResult)
            .ToMaterialized(Sink.Ignore<int>(), Keep.Both)
            .Run(materializer);
        return Runner.OpsPerSecond(items, async () =>
        {
            for (var i = 0; i < items; i++)
            {
                await queue.OfferAsync(i);
            }

            queue.Complete();
            await done;
        });
    }
}
