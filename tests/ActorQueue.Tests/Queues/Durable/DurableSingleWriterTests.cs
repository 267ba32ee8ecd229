using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// One writer per durable queue on a SQLite file across processes too: a second process opening a queue another process
/// has open on the same file would recover the same items (and run them twice) and write under the same sequence
/// numbers. The queue's lock is the operating system's, so a process killed outright leaves the queue free.
/// </summary>
public sealed class DurableSingleWriterTests : ActorQueueTestKit, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "actorqueue-writer-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_queue_open_in_another_process_on_the_same_file_is_refused_and_free_again_once_that_process_is_killed()
    {
        Directory.CreateDirectory(_folder);
        var db = Path.Combine(_folder, "queues.db");
        var log = Path.Combine(_folder, "log.txt");
        using var host = DurableHostProcess.Start("produce", db, log, "100000000");
        try
        {
            await Poll.UntilAsync(() => DurableHostProcess.Lines(log).Any(line => line.StartsWith("a ", StringComparison.Ordinal)) || host.HasExited,
                TimeSpan.FromSeconds(60), "the other process accepted a put");
            Assert.False(host.HasExited, "the other process ended before the test could open its queue");

            var refused = Assert.Throws<InvalidOperationException>(() =>
                new BoundedQueue<int>(10, new QueueDurability { StoragePath = db }, DurableHostProcess.QueueName, system: Sys));
            Assert.Contains($"'{DurableHostProcess.QueueName}'", refused.Message, StringComparison.Ordinal);
            Assert.Contains(db, refused.Message, StringComparison.Ordinal);

            // Another queue on the same file is not the other process's.
            await using (var other = new BoundedQueue<int>(10, new QueueDurability { StoragePath = db }, "another-queue", system: Sys))
            {
                await Within(other.StartAsync());
            }
        }
        finally
        {
            host.Kill(); // SIGKILL: no shutdown code runs, so only the operating system frees the lock
            await host.WaitForExitAsync();
        }

        await using var queue = new BoundedQueue<int>(10, new QueueDurability { StoragePath = db }, DurableHostProcess.QueueName, system: Sys);
        await Within(queue.StartAsync());
        Assert.True(queue.Size > 0, "the killed process's accepted items are recovered");
    }

    [Fact]
    public async Task A_queue_refused_by_a_terminated_actor_system_leaves_its_name_and_file_free()
    {
        Directory.CreateDirectory(_folder);
        var durability = new QueueDurability { StoragePath = Path.Combine(_folder, "queues.db") };
        var ended = ActorQueue.Runtime.ActorQueueRuntime.Create("writer-ended");
        await ended.Terminate();
        var refusal = Record.Exception(() => new BoundedQueue<int>(10, durability, "after-terminate", system: ended));

        await using var queue = new BoundedQueue<int>(10, durability, "after-terminate", system: Sys);
        await Within(queue.StartAsync());
        Assert.NotNull(refusal);
    }

    public new void Dispose()
    {
        base.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // left to the system's temporary folder cleanup
        }
    }
}
