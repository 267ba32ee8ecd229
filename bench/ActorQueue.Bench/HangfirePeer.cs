using System.Diagnostics;
using Hangfire;
using Hangfire.InMemory;
using Hangfire.Storage.SQLite;

namespace ActorQueue.Bench;

/// <summary>
/// Hangfire as a durable queue's peer: producers enqueue fire-and-forget jobs (each enqueue returns once the storage has
/// it), a server with Hangfire's default worker count runs them, and the clock stops when the last job has run, or after
/// <see cref="Cap"/> with the jobs run by then (a first run here on SQLite ran a few jobs a second and never finished).
/// </summary>
internal static class HangfirePeer
{
    /// <summary>The longest a measurement waits for the jobs; the rate then counts the jobs that ran.</summary>
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(90);

    /// <summary>Hangfire's SQLite storage in a fresh file, polling its queue as often as it allows.</summary>
    public static (JobStorage Storage, Action Cleanup) Sqlite()
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorqueue-bench-hangfire-{Guid.NewGuid():N}.db");
        var storage = new SQLiteStorage(path, new SQLiteStorageOptions { QueuePollInterval = TimeSpan.FromMilliseconds(10) });
        return (storage, () =>
        {
            storage.Dispose();
            foreach (var suffix in new[] { "", "-wal", "-shm", "-journal" })
            {
                try
                {
                    File.Delete(path + suffix);
                }
                catch (IOException)
                {
                    // still held by a pooled connection: left to the temporary folder's cleanup
                }
            }
        });
    }

    /// <summary>Hangfire's in-memory storage: no durability, for orientation only.</summary>
    public static (JobStorage Storage, Action Cleanup) InMemory()
    {
        var storage = new InMemoryStorage();
        return (storage, storage.Dispose);
    }

    /// <summary>Items/s: <paramref name="producers"/> enqueue <paramref name="items"/> jobs, Hangfire's workers run them, until the last has run.</summary>
    public static async Task<double> EnqueueAndProcess(int items, int producers, Func<(JobStorage Storage, Action Cleanup)> create)
    {
        var (storage, cleanup) = create();
        try
        {
            HangfireJob.Reset(items);
            var client = new BackgroundJobClient(storage);
            using var server = new BackgroundJobServer(new BackgroundJobServerOptions { SchedulePollingInterval = TimeSpan.FromSeconds(1) }, storage);
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(() =>
            {
                for (var i = p; i < items; i += producers)
                {
                    client.Enqueue(() => HangfireJob.Run(i));
                }
            })));
            var ran = await Task.WhenAny(HangfireJob.AllRan, Task.Delay(Cap)) == HangfireJob.AllRan ? items : items - HangfireJob.Left;
            var rate = ran / clock.Elapsed.TotalSeconds;
            if (ran < items)
            {
                await Console.Error.WriteLineAsync($"Hangfire ran {ran} of {items} jobs in {Cap.TotalSeconds} s; its rate counts those");
            }

            server.SendStop();
            return rate;
        }
        finally
        {
            cleanup();
        }
    }
}

/// <summary>The job Hangfire runs (public: Hangfire stores the method by name and finds it again to run it).</summary>
public static class HangfireJob
{
    private static int s_left;

    private static TaskCompletionSource s_allRan = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal static Task AllRan => s_allRan.Task;

    internal static int Left => Volatile.Read(ref s_left);

    internal static void Reset(int items)
    {
        s_allRan = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref s_left, items);
    }

    /// <summary>A trivial job: counts itself, and the last one tells the bench.</summary>
    /// <param name="item">The item.</param>
    public static void Run(int item)
    {
        Debug.Assert(item >= 0, "items are numbered from 0");
        if (Interlocked.Decrement(ref s_left) == 0)
        {
            s_allRan.TrySetResult();
        }
    }
}
