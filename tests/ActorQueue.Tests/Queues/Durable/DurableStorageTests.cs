using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>A database a durable queue cannot use is a clear error when the queue is created, never a silent queue in memory.</summary>
public sealed class DurableStorageTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;

    public DurableStorageTests()
    {
        _store = new DurableStore(Sys);
    }

    [Fact]
    public void A_corrupt_database_file_is_a_clear_error_naming_the_file()
    {
        var path = Path.Combine(_store.Folder, "corrupt.db");
        File.WriteAllBytes(path, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7))]);

        var error = Assert.Throws<QueueStorageException>(() =>
            new BoundedQueue<int>(10, new QueueDurability { StoragePath = path }, DurableStore.UniqueName("corrupt"), system: Sys));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("corrupt", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_database_that_cannot_be_created_is_a_clear_error_naming_the_file()
    {
        var blocker = Path.Combine(_store.Folder, "a-file");
        File.WriteAllText(blocker, "not a folder");
        var path = Path.Combine(blocker, "queues.db");

        var error = Assert.Throws<QueueStorageException>(() =>
            new BoundedQueue<int>(10, new QueueDurability { StoragePath = path }, DurableStore.UniqueName("unwritable"), system: Sys));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_queue_refused_for_its_storage_leaves_its_name_free()
    {
        var name = DurableStore.UniqueName("retry-open");
        var bad = Path.Combine(_store.Folder, "bad.db");
        File.WriteAllText(bad, new string('x', 4096));
        Assert.Throws<QueueStorageException>(() => new BoundedQueue<int>(10, new QueueDurability { StoragePath = bad }, name, system: Sys));

        await using var queue = new BoundedQueue<int>(10, _store.Durability(), name, system: Sys);
        await Within(queue.StartAsync());
        Assert.Equal(QueueStatus.Processing, queue.Status);
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
