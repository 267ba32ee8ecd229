using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 53: a disposed durable queue on a SQLite file left its journal's and snapshot store's connections open in
/// Microsoft.Data.Sqlite's pool until the process exited, so SQLite never checkpointed the file: <c>FILE-wal</c> and
/// <c>FILE-shm</c> stayed beside it, the items were only in that WAL (a copy of the file alone had none of them), and a
/// file put at that path later got the stale WAL applied (the CLI cleared every pool of the process itself before it
/// removed a refused state). The last queue of the process on a file now closes that file's pooled connections, and
/// only that file's, as its disposal completes. Every test works on SQLite files in a scratch directory of its own.
/// </summary>
public sealed class DurableQueuePoolRound53Tests : ActorQueueTestKit
{
    private readonly CliScratch _scratch = new();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _scratch.Dispose();
        }
    }

    /// <summary>
    /// Three items put, the queue disposed: nothing but the file (and the queue's name lock file) is left, and a copy of
    /// the file alone, opened elsewhere, holds the three items. Failed before: "left [queues.db-shm, queues.db-wal]
    /// beside the disposed queue's file". Mutant: the pool never cleared (fails alike).
    /// </summary>
    [Fact]
    public async Task A_disposed_queue_leaves_no_wal_and_a_copy_of_its_file_holds_every_item()
    {
        var file = _scratch.PathOf("queues.db");
        await using (var queue = Open(file, "pool"))
        {
            await Within(queue.StartAsync());
            for (var item = 1; item <= 3; item++)
            {
                Assert.True(await Within(queue.PutAsync(item)));
            }
        }

        AssertNoWal(file);
        File.Copy(file, _scratch.PathOf("copy.db"));
        await using var copy = Open(_scratch.PathOf("copy.db"), "pool");
        await Within(copy.StartAsync());
        Assert.Equal(3, copy.Size);
    }

    /// <summary>
    /// Two queues on two files; the first disposed: its file's WAL goes, and the second, still open, keeps its pooled
    /// connections (its WAL is still there) and goes on taking and running items; disposed in turn, its WAL goes too.
    /// Failed before: "left [a.db-shm, a.db-wal] beside the disposed queue's file". Mutants: every pool of the process
    /// cleared (<c>ClearAllPools</c>) fails: "the live queue's file lost its WAL"; a file's pool cleared only once no
    /// durable queue at all is open in the process fails as before.
    /// </summary>
    /// <remarks>
    /// No test clears every pool of the process any more (two did as they ended, which in the moment between the first
    /// disposal and the check below would have failed it).
    /// </remarks>
    [Fact]
    public async Task Disposing_a_queue_leaves_a_live_queue_on_another_file_and_its_connections_alone()
    {
        var (first, second) = (_scratch.PathOf("a.db"), _scratch.PathOf("b.db"));
        await using var live = Open(second, "live");
        await Within(live.StartAsync());
        Assert.True(await Within(live.PutAsync(1)));
        await using (var disposed = Open(first, "disposed"))
        {
            await Within(disposed.StartAsync());
            Assert.True(await Within(disposed.PutAsync(1)));
        }

        AssertNoWal(first);
        Assert.True(File.Exists(second + "-wal"), "the live queue's file lost its WAL: its pooled connections were closed with the disposed queue's");

        Assert.True(await Within(live.PutAsync(2)));
        var processed = new ConcurrentQueue<int>();
        await Within(live.StartWorkersAsync(item =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        }, numWorkers: 1));
        await Within(live.JoinAsync());
        Assert.Equal([1, 2], processed);

        await Within(live.DisposeAsync().AsTask());
        AssertNoWal(second);
    }

    /// <summary>
    /// A queue refused because another process holds its name (here another open of its lock file holds the lock)
    /// leaves no WAL either: the check of the file before the refusal had set it to WAL and left its connection pooled.
    /// Failed before: "left [refused.db-shm, refused.db-wal] beside the disposed queue's file". Mutant: the pool not
    /// cleared on a refusal (fails alike).
    /// </summary>
    [Fact]
    public void A_queue_refused_for_its_name_leaves_no_wal()
    {
        var file = _scratch.PathOf("refused.db");
        using (new FileStream(QueueFileLock.PathFor(file, "taken"), FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            var refusal = Assert.Throws<InvalidOperationException>(() => Open(file, "taken"));
            Assert.Contains("is already open on the SQLite file", refusal.Message, StringComparison.Ordinal);
        }

        AssertNoWal(file);
    }

    private BoundedQueue<int> Open(string file, string name) => new(16, new QueueDurability { StoragePath = file }, name, system: Sys);

    private void AssertNoWal(string file)
    {
        var left = _scratch.Entries().Where(entry => entry == Path.GetFileName(file) + "-wal" || entry == Path.GetFileName(file) + "-shm").ToList();
        Assert.True(left.Count == 0, $"left [{string.Join(", ", left)}] beside the disposed queue's file");
    }
}
