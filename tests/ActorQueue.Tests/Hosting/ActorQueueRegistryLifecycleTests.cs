using ActorQueue.Hosting;
using ActorQueue.Runtime;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorQueue.Tests.Hosting;

/// <summary>
/// The registry's names and its stop: names match whatever their case, nothing is handed out once the stop has begun,
/// and a synchronous <see cref="ActorQueueRegistry.Dispose"/> starts the stop without waiting for it.
/// </summary>
[Collection(HostingCollection.Name)]
public class ActorQueueRegistryLifecycleTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30); // a hang guard, as the other hosting tests' (10 s is short for a loaded machine)

    [Fact]
    public async Task GetQueue_after_the_stop_throws_ObjectDisposedException_for_a_queue_made_before_too()
    {
        var system = ActorQueueRuntime.Create("hosting-registry-stopped");
        try
        {
            var options = new ActorQueueOptions();
            options.Queues["q"] = new QueueOptions();
            var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);
            registry.GetQueue<int>("q");

            await registry.StopAsync(CancellationToken.None).WaitAsync(Bound);

            Assert.Throws<ObjectDisposedException>(() => registry.GetQueue<int>("q"));
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    [Fact]
    public async Task Limiter_and_queue_names_match_whatever_their_case()
    {
        var system = ActorQueueRuntime.Create("hosting-registry-names");
        try
        {
            var options = new ActorQueueOptions();
            options.Limiters["llm"] = new LimiterOptions { MaxRunning = 2 };
            options.Queues["fetch"] = new QueueOptions { Limiter = "LLM" };
            Assert.True(options.Limiters.ContainsKey("Llm"));
            await using var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);

            Assert.Same(registry.GetLimiter("llm"), registry.GetLimiter("LLM"));
            Assert.Same(registry.GetQueue<int>("fetch"), registry.GetQueue<int>("FETCH"));
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    [Fact]
    public async Task Dispose_starts_the_stop_without_waiting_for_the_work_in_flight()
    {
        var system = ActorQueueRuntime.Create("hosting-registry-dispose");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var options = new ActorQueueOptions();
            options.Queues["q"] = new QueueOptions();
            var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);
            var queue = registry.GetQueue<int>("q");
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.ProcessAsync(async (_, _) =>
            {
                running.TrySetResult();
                await release.Task;
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);

            registry.Dispose(); // returns with the worker still on its item

            Assert.Throws<ObjectDisposedException>(() => registry.GetQueue<int>("q"));
            var disposal = registry.DisposeAsync().AsTask(); // the stop Dispose started
            Assert.False(disposal.IsCompleted);
            release.SetResult();
            await disposal.WaitAsync(Bound);
        }
        finally
        {
            release.TrySetResult();
            await system.Terminate().WaitAsync(Bound);
        }
    }
}
