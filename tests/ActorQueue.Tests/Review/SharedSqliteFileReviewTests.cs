using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using LinqToDB.Internal.DataProvider;
using Microsoft.Data.Sqlite;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Durable queues on one SQLite file: every connection their storage opens there waits for a taken file in SQLite's own
/// busy handler. The journal, the snapshot store and the journal's deletions write on connections of their own, and one
/// queue's housekeeping ran beside another's write (<see cref="SnapshotHousekeeping"/> keeps only a queue's own apart);
/// Microsoft.Data.Sqlite sets no busy handler, so the writer that found the file taken got <c>SQLITE_BUSY</c> at once and
/// slept 150 ms (its retry) while the puts of its queue waited. With <c>PRAGMA busy_timeout</c> SQLite waits inside and
/// goes on within milliseconds of the other's commit (timed in the bench, <c>durable-shared-file</c>). Failed before: every
/// connection the two queues' storage opened had a busy timeout of 0.
/// </summary>
public sealed class SharedSqliteFileReviewTests : ActorQueueTestKit
{
    private const int ItemsPerQueue = 120;

    [Fact]
    public async Task Every_connection_two_queues_open_on_one_file_waits_in_SQLites_busy_handler()
    {
        using var store = new DurableStore(Sys);
        var durability = new QueueDurability { StoragePath = store.DatabasePath, SnapshotEvery = 20 };
        DurableStorage.Prepare(Sys, durability, "shared-file"); // the library's hook goes in before the watch chains to it
        var names = new[] { DurableStore.UniqueName("shared-a"), DurableStore.UniqueName("shared-b") };
        using (var watch = ConnectionWatch.On(store.DatabasePath))
        {
            await Task.WhenAll(names.Select(name => RunAsync(durability, name)));
            // At least a recovery's read and a write per queue: the watch saw the queues' connections.
            Assert.True(watch.Opened >= 2 * names.Length, $"the queues' storage opened {watch.Opened} connection(s) on the file");
            Assert.True(watch.WithoutBusyHandler.IsEmpty,
                $"{watch.WithoutBusyHandler.Count} of {watch.Opened} connections opened on the shared file had no busy handler (busy_timeout {string.Join(", ", watch.WithoutBusyHandler.Distinct())}): a writer that found the file taken slept 150 ms");
        }

        foreach (var name in names)
        {
            await using var again = new BoundedQueue<int>(ItemsPerQueue, durability, name, system: Sys);
            await Within(again.StartAsync());
            Assert.Equal(0, again.Size);
            Assert.Equal(0, again.Metrics.InFlight);
        }
    }

    /// <summary>Puts <see cref="ItemsPerQueue"/> items at once into a started queue, then runs them on two workers: every put is accepted, every item runs once.</summary>
    private async Task RunAsync(QueueDurability durability, string name)
    {
        var runs = new int[ItemsPerQueue];
        await using var queue = new BoundedQueue<int>(ItemsPerQueue, durability, name, system: Sys);
        await Within(queue.StartAsync());
        var accepted = await Within(Task.WhenAll(Enumerable.Range(0, ItemsPerQueue).Select(item => InAnotherFlow(() => queue.PutAsync(item)))));
        Assert.All(accepted, Assert.True);
        await Within(queue.StartWorkersAsync(RunOnce, numWorkers: 2));
        await Within(queue.JoinAsync());
        Assert.All(runs, count => Assert.Equal(1, count));

        Task RunOnce(int item)
        {
            Interlocked.Increment(ref runs[item]);
            return Task.CompletedTask;
        }
    }

    /// <summary>
    /// The busy timeout of each connection linq2db makes on one file, read as it opens (after the library's own handler:
    /// the watch chains to the hook the library set, and subscribes after it). Gives the hook back when disposed.
    /// </summary>
    private sealed class ConnectionWatch : IDisposable
    {
        private readonly Func<LinqToDB.DataProvider.IDataProvider, DbConnection, DbConnection>? _previous;

        private readonly string _path;

        private int _opened;

        private ConnectionWatch(string path)
        {
            _path = path;
            _previous = DataProviderBase.OnConnectionCreated;
            DataProviderBase.OnConnectionCreated = (provider, connection) =>
            {
                connection = _previous is null ? connection : _previous(provider, connection);
                if (connection is SqliteConnection sqlite && sqlite.DataSource == _path)
                {
                    sqlite.StateChange += Watch;
                }

                return connection;
            };
        }

        public int Opened => Volatile.Read(ref _opened);

        public ConcurrentBag<long> WithoutBusyHandler { get; } = [];

        public static ConnectionWatch On(string path) => new(path);

        public void Dispose() => DataProviderBase.OnConnectionCreated = _previous;

        private void Watch(object? sender, StateChangeEventArgs change)
        {
            if (change.CurrentState != ConnectionState.Open || sender is not SqliteConnection connection)
            {
                return;
            }

            Interlocked.Increment(ref _opened);
            using var read = connection.CreateCommand();
            read.CommandText = "PRAGMA busy_timeout;";
            var timeout = (long)read.ExecuteScalar()!;
            if (timeout <= 0)
            {
                WithoutBusyHandler.Add(timeout);
            }
        }
    }
}
