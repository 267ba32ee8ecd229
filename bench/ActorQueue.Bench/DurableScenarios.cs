using System.Diagnostics;
using System.Threading.Channels;
using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Data.Sqlite;

namespace ActorQueue.Bench;

/// <summary>
/// Durable queues (issue 19) against the limit of the disk: raw SQLite inserts of the same payloads with the same
/// durability (a put is acknowledged only after its commit; concurrent puts share a commit). Each run uses a fresh file in
/// the temporary folder. The job-queue peers are Hangfire on its SQLite storage (a put is an enqueue committed to the file)
/// and, for orientation only, Hangfire on its in-memory storage; both enqueue and process the same items as we do (ours
/// with <see cref="Workers"/> workers, Hangfire with its default worker count, unchanged). durable-1ms runs <see cref="IoWorkers"/> workers: 1 ms handlers are I/O, and
/// a user with I/O handlers runs more workers than cores (with 64, 64 × <c>Task.Delay(1)</c> alone capped the scenario
/// at about half the raw rate, so it measured the worker count rather than the queue).
/// </summary>
internal static class DurableScenarios
{
    /// <summary>Concurrent producers: puts that arrive together share a write.</summary>
    private const int Producers = 64;

    /// <summary>Workers for trivial handlers.</summary>
    private const int Workers = 64;

    /// <summary>
    /// Workers for 1 ms handlers: enough that <c>Task.Delay(1)</c> does not bound the rate below the disk's. A
    /// <c>Task.Delay(1)</c> takes 4 ms on this machine (the timer's tick: 64, 256 or 1,024 tasks each awaiting it
    /// averaged 4.00 ms), so 256 workers capped the scenario at 64 k items/s against a raw rate of 150–210 k; 1,024 cap it
    /// at 256 k (round 31).
    /// </summary>
    private const int IoWorkers = 1024;

    /// <summary>The peer of durable-shared-file: the same two queues, each on a file of its own.</summary>
    private const string OwnFiles = "OwnFiles";

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        var items = sizes.IoItems;
        yield return new Scenario("durable-trivial", "items/s",
        [
            new(Runner.Ours, () => DurablePut(system, items, Workers, _ => Task.CompletedTask)),
            new("RawSqlite", () => RawSqliteInserts(items)),
        ], new Target("RawSqlite", 0.3));

        yield return new Scenario("durable-1ms", "items/s",
        [
            new(Runner.Ours, () => DurablePut(system, items, IoWorkers, _ => Task.Delay(1))),
            new("RawSqlite", () => RawSqliteInserts(items)),
        ], new Target("RawSqlite", 0.3));

        // Two queues on one file against two on files of their own: one's snapshot and deletions beside the other's writes
        // (no target: one file takes one writer at a time, so it cannot match two files; it shows the 150 ms stalls).
        yield return new Scenario("durable-shared-file", "items/s",
        [
            new(Runner.Ours, async () => (await TwoQueues(system, items, sharedFile: true)).Rate),
            new(OwnFiles, async () => (await TwoQueues(system, items, sharedFile: false)).Rate),
        ]);

        yield return new Scenario("durable-shared-file-slowest-put", "ms",
        [
            new(Runner.Ours, async () => (await TwoQueues(system, items, sharedFile: true)).SlowestPutMs),
            new(OwnFiles, async () => (await TwoQueues(system, items, sharedFile: false)).SlowestPutMs),
        ]);

        // Hangfire on SQLite ran a few jobs a second here under load: fewer items, the same for every subject.
        var jobs = Math.Min(items, 500);
        yield return new Scenario("durable-vs-hangfire", "items/s",
        [
            new(Runner.Ours, () => DurablePut(system, jobs, Workers, _ => Task.CompletedTask)),
            new("HangfireSqlite", () => HangfirePeer.EnqueueAndProcess(jobs, Producers, HangfirePeer.Sqlite)),
            new("HangfireInMemory", () => HangfirePeer.EnqueueAndProcess(jobs, Producers, HangfirePeer.InMemory)),
        ], new Target("HangfireSqlite", 10));

        yield return new Scenario("durable-recovery", "items/s",
        [
            new(Runner.Ours, () => DurableRecovery(system, 100_000)),
            new("RawSqlite", () => RawSqliteReadBack(100_000)),
        ], new Target("RawSqlite", 0.5));
    }

    /// <summary>Items/s through a durable queue: <see cref="Producers"/> producers put, <paramref name="workers"/> workers run <paramref name="work"/>, until joined.</summary>
    private static async Task<double> DurablePut(ActorSystem system, int items, int workers, Func<int, Task> work)
    {
        using var file = new TempDatabase();
        await using var queue = new BoundedQueue<int>(4096, new QueueDurability { StoragePath = file.Path, SnapshotEvery = 10_000 },
            "bench-" + Guid.NewGuid().ToString("N"), Timeout.InfiniteTimeSpan, system: system);
        await queue.StartAsync();
        await queue.StartWorkersAsync(work, numWorkers: workers);
        return await Runner.OpsPerSecond(items, async () =>
        {
            await Task.WhenAll(Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
            {
                for (var i = p; i < items; i += Producers)
                {
                    await queue.PutAsync(i);
                }
            })));
            await queue.JoinAsync();
        });
    }

    /// <summary>
    /// Two durable queues (half the items each, <see cref="Producers"/>/2 producers and <see cref="Workers"/>/2 workers
    /// each, a snapshot every 100 events) on one SQLite file or on one each: items/s over both, and the slowest put.
    /// </summary>
    private static async Task<(double Rate, double SlowestPutMs)> TwoQueues(ActorSystem system, int items, bool sharedFile)
    {
        using TempDatabase first = new(), second = new();
        var queues = new[] { first, sharedFile ? first : second }.Select(file => new BoundedQueue<int>(4096,
            new QueueDurability { StoragePath = file.Path, SnapshotEvery = 100 }, "bench-" + Guid.NewGuid().ToString("N"), Timeout.InfiniteTimeSpan, system: system)).ToArray();
        long slowest = 0;
        try
        {
            foreach (var queue in queues)
            {
                await queue.StartAsync();
                await queue.StartWorkersAsync(_ => Task.CompletedTask, numWorkers: Workers / 2);
            }

            var rate = await Runner.OpsPerSecond(items, () => Task.WhenAll(queues.Select(async queue =>
            {
                await Task.WhenAll(Enumerable.Range(0, Producers / 2).Select(p => Task.Run(async () =>
                {
                    for (var i = p; i < items / 2; i += Producers / 2)
                    {
                        var start = Stopwatch.GetTimestamp();
                        await queue.PutAsync(i);
                        var took = Stopwatch.GetTimestamp() - start;
                        for (var seen = Volatile.Read(ref slowest); took > seen; seen = Volatile.Read(ref slowest))
                        {
                            Interlocked.CompareExchange(ref slowest, took, seen);
                        }
                    }
                })));
                await queue.JoinAsync();
            })));
            return (rate, Stopwatch.GetElapsedTime(0, slowest).TotalMilliseconds);
        }
        finally
        {
            foreach (var queue in queues)
            {
                await queue.DisposeAsync();
            }
        }
    }

    /// <summary>Items/s recovered: a queue left with <paramref name="items"/> pending is opened again and started.</summary>
    private static async Task<double> DurableRecovery(ActorSystem system, int items)
    {
        using var file = new TempDatabase();
        var durability = new QueueDurability { StoragePath = file.Path, SnapshotEvery = 1_000_000 };
        var name = "bench-recovery-" + Guid.NewGuid().ToString("N");
        await using (var first = new BoundedQueue<int>(items, durability, name, Timeout.InfiniteTimeSpan, system: system))
        {
            await first.StartAsync();
            await Task.WhenAll(Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
            {
                for (var i = p; i < items; i += Producers)
                {
                    await first.PutAsync(i);
                }
            })));
        }

        CollectSetUpGarbage();
        var clock = Stopwatch.StartNew();
        await using var second = new BoundedQueue<int>(items, durability, name, Timeout.InfiniteTimeSpan, system: system);
        await second.StartAsync();
        return items / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The disk's rate: inserts of the same payloads, one transaction per group of puts waiting together, each put awaiting its commit.</summary>
    private static async Task<double> RawSqliteInserts(int items)
    {
        using var file = new TempDatabase();
        await using var connection = file.Open();
        var puts = Channel.CreateUnbounded<(byte[] Payload, TaskCompletionSource Done)>();
        var writer = Task.Run(async () =>
        {
            while (await puts.Reader.WaitToReadAsync())
            {
                await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
                var group = new List<TaskCompletionSource>();
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO items(payload) VALUES ($p)";
                var parameter = insert.Parameters.Add("$p", SqliteType.Blob);
                while (group.Count < 200 && puts.Reader.TryRead(out var put))
                {
                    parameter.Value = put.Payload;
                    await insert.ExecuteNonQueryAsync();
                    group.Add(put.Done);
                }

                await transaction.CommitAsync();
                group.ForEach(done => done.SetResult());
            }
        });
        var rate = await Runner.OpsPerSecond(items, () => Task.WhenAll(Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
        {
            for (var i = p; i < items; i += Producers)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await puts.Writer.WriteAsync((System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(i), done));
                await done.Task;
            }
        }))));
        puts.Writer.Complete();
        await writer;
        return rate;
    }

    /// <summary>Items/s read back raw: the floor for recovery.</summary>
    private static async Task<double> RawSqliteReadBack(int items)
    {
        using var file = new TempDatabase();
        await using var connection = file.Open();
        await using (var transaction = (SqliteTransaction)await connection.BeginTransactionAsync())
        {
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO items(payload) VALUES ($p)";
            var parameter = insert.Parameters.Add("$p", SqliteType.Blob);
            for (var i = 0; i < items; i++)
            {
                parameter.Value = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(i);
                await insert.ExecuteNonQueryAsync();
            }

            await transaction.CommitAsync();
        }

        CollectSetUpGarbage();
        var clock = Stopwatch.StartNew();
        await using var read = connection.CreateCommand();
        read.CommandText = "SELECT payload FROM items ORDER BY id";
        await using var reader = await read.ExecuteReaderAsync();
        var count = 0;
        while (await reader.ReadAsync())
        {
            _ = System.Text.Json.JsonSerializer.Deserialize<int>((byte[])reader[0]);
            count++;
        }

        return count / clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Collects what a recovery subject's set-up left (the runner collects before each subject, not between its set-up and
    /// its timed part): our set-up's first queue leaves its 100,000 entries and its puts' garbage behind, the raw peer's
    /// only its inserts' buffers, so without this a full collection of the set-up's garbage fell inside our timed
    /// recovery in some rounds and not in others. Both subjects call it, at the same point.
    /// </summary>
    private static void CollectSetUpGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>A SQLite file in the temporary folder, deleted afterwards.</summary>
    private sealed class TempDatabase : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"actorqueue-bench-{Guid.NewGuid():N}.db");

        public SqliteConnection Open()
        {
            var connection = new SqliteConnection($"Data Source={Path}");
            connection.Open();
            using var setup = connection.CreateCommand();
            setup.CommandText = "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, payload BLOB NOT NULL);";
            setup.ExecuteNonQuery();
            return connection;
        }

        public void Dispose()
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(Path + suffix);
            }

            // The queues' name locks beside the file (the library leaves them: see QueueFileLock).
            foreach (var nameLock in Directory.EnumerateFiles(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + ".*.lock"))
            {
                File.Delete(nameLock);
            }
        }
    }
}
