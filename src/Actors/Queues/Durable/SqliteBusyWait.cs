using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using LinqToDB.Internal.DataProvider;
using Microsoft.Data.Sqlite;

namespace ActorQueue.Actors;

/// <summary>
/// SQLite's own busy handler (<c>PRAGMA busy_timeout</c>) on every connection the durable storage opens on its files:
/// a writer that finds the file taken waits inside SQLite, which tries again after 1, 2, 5, 10, 15, 20, 25 … ms, and goes
/// on as soon as the other writer commits.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite sets no busy handler: SQLite answers a writer that finds the file taken with <c>SQLITE_BUSY</c> at
/// once, and Microsoft.Data.Sqlite sleeps 150 ms and tries again (<c>SqliteDataReader.NextResult</c>,
/// <c>SqliteCommand.PrepareAndEnumerateStatements</c>: <c>Thread.Sleep(150)</c> until the command's timeout). Durable
/// queues on one file write on connections of their own — each file's journal, its snapshot store, the journal's
/// deletions — so one queue's snapshot beside another's write made one of them sleep 150 ms while every put of that queue
/// waited (and so did two processes on one file). SQLite's wait ends when the file is free, a few milliseconds after the
/// other commit. The patience is Microsoft.Data.Sqlite's default command timeout, so a writer gives up when it gave up
/// before.
/// <para>
/// The connections are Akka.Persistence.Sql's, made by linq2db, whose configuration (<c>DataOptions</c>) only an actor
/// system's setup can carry, and SQLite keeps the setting per connection; so the pragma runs as each connection opens,
/// found through linq2db's hook for the connections its providers make (<see cref="DataProviderBase.OnConnectionCreated"/>,
/// chained to whatever was there) and only on the connection strings of our files.
/// </para>
/// </remarks>
internal static class SqliteBusyWait
{
    /// <summary>How long SQLite waits for a taken file: Microsoft.Data.Sqlite's default command timeout (30 s).</summary>
    internal const int TimeoutMilliseconds = 30_000;

    /// <summary>The connection strings of the SQLite files durable queues use (<see cref="DurableStorage.ConnectionString"/>).</summary>
    private static readonly ConcurrentDictionary<string, byte> Files = new(StringComparer.Ordinal);

    private static int _hooked;

    /// <summary>Connections linq2db makes with <paramref name="connectionString"/> get the busy handler as they open (from now on).</summary>
    public static void Register(string connectionString)
    {
        Files.TryAdd(connectionString, 0);
        if (Interlocked.Exchange(ref _hooked, 1) == 0)
        {
            var previous = DataProviderBase.OnConnectionCreated;
            DataProviderBase.OnConnectionCreated = (provider, connection) => Watch(previous is null ? connection : previous(provider, connection));
        }
    }

    /// <summary>Sets the busy handler on an open connection.</summary>
    public static void Apply(SqliteConnection connection)
    {
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA busy_timeout = {TimeoutMilliseconds};";
        pragma.ExecuteNonQuery();
    }

    private static DbConnection Watch(DbConnection connection)
    {
        if (connection is SqliteConnection sqlite && Files.ContainsKey(sqlite.ConnectionString))
        {
            sqlite.StateChange += Opened;
        }

        return connection;
    }

    private static void Opened(object? sender, StateChangeEventArgs change)
    {
        if (change.CurrentState == ConnectionState.Open && sender is SqliteConnection connection)
        {
            Apply(connection);
        }
    }
}
