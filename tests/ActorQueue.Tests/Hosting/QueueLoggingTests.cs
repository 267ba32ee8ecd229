using ActorQueue.Actors;
using ActorQueue.Runtime;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace ActorQueue.Tests.Hosting;

public class QueueLoggingTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_queue_given_a_Microsoft_logger_logs_start_and_worker_errors_to_it()
    {
        var logs = new CapturingLoggerProvider();
        await using var queue = new WorkQueue<int>(10, null, concurrencyLimit: null, logs.CreateLogger("app"), Sys, "mel");
        await queue.StartAsync();
        await queue.ProcessAsync(item => item == 2 ? throw new InvalidOperationException("boom 2") : Task.CompletedTask);
        await queue.PutAsync(1);
        await queue.PutAsync(2);
        await Within(queue.JoinAsync());

        Assert.True(logs.Logged("app", "Queue mel started"));
        var failure = Assert.Single(logs.Events, e => e.Level == LogLevel.Error);
        Assert.Equal("Worker failed on item 2 in queue mel", failure.Message);
        Assert.Equal("boom 2", failure.Exception?.Message);
    }

    [Fact]
    public async Task A_queue_without_a_logger_logs_to_the_factory_attached_to_its_system_even_when_attached_later()
    {
        var logs = new CapturingLoggerProvider();
        await using var queue = new BoundedQueue<int>(10, system: Sys, name: "late");
        ActorQueueRuntime.UseLoggerFactory(Sys, logs);
        try
        {
            await queue.StartAsync();

            await Eventually(() => logs.Logged("ActorQueue.Queues", "Queue late started"), "the queue logs through the attached factory");
        }
        finally
        {
            ActorQueueRuntime.UseLoggerFactory(Sys, null);
        }
    }
}
