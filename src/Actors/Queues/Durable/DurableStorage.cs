using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Data.Sqlite;

namespace ActorQueue.Actors;

/// <summary>
/// Readies an actor system for durable queues and names the journal and snapshot store a queue uses: the embedded
/// <c>hocon/persistence.conf</c> as a fallback, and for a SQLite file a
/// journal and snapshot store of its own, after checking that the file can be read and written.
/// </summary>
internal static class DurableStorage
{
    private const string ConfigResourceName = "ActorQueue.hocon.persistence.conf";
    private const string SqliteTemplatePath = "actorqueue.persistence.sqlite";
    private const string SqliteFilesPath = "actorqueue.persistence.sqlite-files";

    private static readonly Lazy<Config> EmbeddedConfig =
        new(() => ActorQueueRuntime.LoadEmbeddedConfig(Assembly.GetExecutingAssembly(), ConfigResourceName));

    /// <summary>Guards the one-time set-up of each actor system and the injection of each file's plugins.</summary>
    private static readonly Lock Gate = new();

    /// <summary>
    /// Durable queues open now, by storage (<see cref="StorageOf"/>) and name: two routers must never journal under one
    /// persistence id. Keyed by actor system, two systems in one process opened a queue of the same name on one SQLite file,
    /// and each recovered, and wrote over, the other's items.
    /// </summary>
    private static readonly ConcurrentDictionary<(object Storage, string Name), byte> Open = new();

    /// <summary>
    /// The props of a durable router for <paramref name="name"/>, after readying the system and checking the storage;
    /// <paramref name="release"/> frees the name (the router calls it when it stops; the caller, if the router was never made).
    /// </summary>
    /// <exception cref="QueueStorageException">The SQLite file cannot be opened, read or written.</exception>
    /// <exception cref="InvalidOperationException">A durable queue of that name is open on the same storage (in any actor system; on a SQLite file or a PostgreSQL journal, in any process).</exception>
    public static Props RouterProps<T>(ActorSystem system, QueueDurability durability, string name, int capacity, QueueTelemetry telemetry,
                                       QueueCounters counters, TaskCompletionSource recovered, out Action release)
    {
        var sqlitePath = durability.SqlitePath; // once: a relative path read again at the queue's end could name another file (the process's folder changed)
        var plugins = Prepare(system, durability, name);
        var (storage, described) = StorageOf(system, durability, plugins.Journal);
        if (!Open.TryAdd((storage, name), 0))
        {
            throw new InvalidOperationException($"A durable queue named '{name}' is already open on {described}; dispose it first (a disposed queue keeps its name until its journal has answered its last write)");
        }

        IDisposable? nameLock;
        try
        {
            // Across processes too, for a SQLite file or a PostgreSQL database: the guard above sees this process only.
            nameLock = sqlitePath is { } file
                ? QueueFileLock.Take(file, name)
                : QueueAdvisoryLock.TakeIfPostgres(system.Settings.Config.GetConfig(plugins.Journal), name);
        }
        catch
        {
            Free(storage, name, sqlitePath);
            throw;
        }

        // Once: a second removal could take out the entry of a queue of this name opened since.
        var released = 0;
        release = () =>
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                nameLock?.Dispose(); // first: a queue of this name opened next in this process must find the name free
                Free(storage, name, sqlitePath);
            }
        };
        return DurableRouterActor<T>.Props("actorqueue-queue-" + name, capacity, durability, plugins, telemetry, counters, recovered, release);
    }

    /// <summary>
    /// Frees the name <paramref name="name"/> on <paramref name="storage"/>; when it was the last durable queue of this
    /// process open on the SQLite file <paramref name="sqlitePath"/>, closes the file's pooled connections too
    /// (<see cref="ClosePooledConnections"/>).
    /// </summary>
    private static void Free(object storage, string name, string? sqlitePath)
    {
        Open.TryRemove((storage, name), out _);
        if (sqlitePath is not null && !Open.Keys.Any(open => open.Storage.Equals(storage)))
        {
            ClosePooledConnections(sqlitePath);
        }
    }

    /// <summary>
    /// Closes the connections Microsoft.Data.Sqlite pools for the SQLite file <paramref name="path"/> (those of its
    /// journal, its snapshot store and its check, all opened with <see cref="ConnectionString"/>), and only those: other
    /// files' queues may be open in the process. One still in use is closed as it is given back. The last connection to
    /// close checkpoints the file and removes its <c>-wal</c> and <c>-shm</c>: left open until the process exited, they
    /// stayed beside the file after its queue was disposed, and SQLite applied that stale WAL to a file copied to that path
    /// later (a copied CLI state lost its finished jobs: h240's review).
    /// </summary>
    /// <remarks>
    /// Called as the last queue on the file is disposed, once its journal has answered its last write, on the router's
    /// thread before the disposal is answered: the checkpoint of a closing connection waits for no lock (SQLite skips it
    /// while another connection uses the file). A connection in use then is closed as it is given back; but a snapshot or
    /// its deletions still under way (the stop does not wait for them) may open one after the clear, which the pool keeps
    /// until it has been idle for some minutes, the process exits or the file's next queue is disposed: its WAL stays
    /// that long. A cluster's distributed queues on the file take no part (they register no name here).
    /// </remarks>
    internal static void ClosePooledConnections(string path)
    {
        using var connection = new SqliteConnection(ConnectionString(path));
        SqliteConnection.ClearPool(connection);
    }

    /// <summary>
    /// Where a queue's journal is, as a key shared by every actor system of the process that writes there, and said for an
    /// error: a SQLite file by its full path; a configured journal with a connection string by that string (not shown: it
    /// may hold a password); any other journal (in memory) by its plugin id in its actor system.
    /// </summary>
    private static (object Key, string Described) StorageOf(ActorSystem system, QueueDurability durability, string journal)
    {
        if (durability.SqlitePath is { } path)
        {
            return ("sqlite:" + path, $"the SQLite file '{path}'");
        }

        var connection = system.Settings.Config.GetString(journal + ".connection-string", "");
        return string.IsNullOrEmpty(connection)
            ? ((system, journal), $"journal '{journal}' of actor system '{system.Name}'")
            : ("connection:" + connection, $"the database of journal '{journal}' (its connection string)");
    }

    /// <summary>A durable queue's name: its identity in the journal, so it must be given.</summary>
    public static string RequireName(string? name) =>
        !string.IsNullOrWhiteSpace(name) ? name : throw new ArgumentException($"A durable queue needs a name (its identity in the journal), got '{name}'", nameof(name));

    /// <summary>The journal and snapshot-store plugin ids for <paramref name="durability"/>, ready to use in <paramref name="system"/>.</summary>
    /// <exception cref="QueueStorageException">The SQLite file cannot be opened, read or written.</exception>
    public static (string Journal, string Snapshot) Prepare(ActorSystem system, QueueDurability durability, string queueName)
    {
        if (durability.SqlitePath is { } file)
        {
            // Outside the gate: an integrity check of a large file, or a write lock the journal holds, takes as long as
            // it takes, and must not hold up queues being opened on other files or systems (the gate guards only the
            // configuration's injection, which is quick).
            CheckSqlite(file, queueName);
        }

        lock (Gate)
        {
            Configure(system);
            if (durability.SqlitePath is not { } path)
            {
                RequirePlugin(system, nameof(QueueDurability.JournalPluginId), durability.JournalPluginId!, queueName);
                if (durability.SnapshotPluginId is { } snapshot)
                {
                    RequirePlugin(system, nameof(QueueDurability.SnapshotPluginId), snapshot, queueName);
                }

                return (durability.JournalPluginId!, durability.SnapshotPluginId ?? "");
            }

            return PluginsForFile(system, path);
        }
    }

    /// <summary>
    /// Throws a clear error when the plugin id <paramref name="key"/> names no configuration in <paramref name="system"/>.
    /// Before, the queue was made, its router failed to start, and StartAsync never completed.
    /// </summary>
    /// <exception cref="QueueStorageException">No configuration at <paramref name="pluginId"/>.</exception>
    private static void RequirePlugin(ActorSystem system, string key, string pluginId, string queueName)
    {
        Akka.Persistence.Persistence.Instance.Apply(system); // its own plugins' defaults (the in-memory journal) join the configuration
        if (!system.Settings.Config.HasPath(pluginId))
        {
            throw new QueueStorageException(
                $"Durable queue '{queueName}': {key} '{pluginId}' names no configuration in actor system '{system.Name}' (load the HOCON that defines it)");
        }
    }

    /// <summary>Opens the file (creating it and its folder), checks its integrity and that a write can start; throws a clear error otherwise.</summary>
    internal static void CheckSqlite(string path, string queueName)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Not pooled: a check that throws leaves no connection open behind it (the queue never opens, so nothing would
            // close its file's pool), and one that passes none either.
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder(ConnectionString(path)) { Pooling = false }.ToString());
            connection.Open();
            SqliteBusyWait.Apply(connection); // the write below may find a queue's journal writing
            using var check = connection.CreateCommand();
            check.CommandText = "PRAGMA quick_check;";
            var result = check.ExecuteScalar() as string;
            if (result != "ok")
            {
                throw new QueueStorageException($"Durable queue '{queueName}': the SQLite file '{path}' failed its integrity check ({result})");
            }

            // WAL lets the snapshot store read while the journal writes; a write transaction proves the file is writable.
            check.CommandText = "PRAGMA journal_mode=WAL; BEGIN IMMEDIATE; ROLLBACK;";
            check.ExecuteNonQuery();
        }
        catch (Exception error) when (error is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new QueueStorageException($"Durable queue '{queueName}': cannot use the SQLite file '{path}': {error.Message}", error);
        }
    }

    internal static string ConnectionString(string path) => new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate }.ToString();

    /// <summary>Adds <c>hocon/persistence.conf</c> below the system's own configuration, once: anything the system sets wins.</summary>
    internal static void Configure(ActorSystem system)
    {
        if (system.Settings.Config.HasPath(SqliteTemplatePath))
        {
            return;
        }

        system.Settings.InjectTopLevelFallback(EmbeddedConfig.Value);
    }

    /// <summary>
    /// A journal and snapshot store for one SQLite file, copied from the template with the file's connection string; their
    /// connections wait in SQLite's busy handler for a file another writes (<see cref="SqliteBusyWait"/>).
    /// </summary>
    private static (string Journal, string Snapshot) PluginsForFile(ActorSystem system, string path)
    {
        SqliteBusyWait.Register(ConnectionString(path));
        var key = "f" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(path)), 0, 8).ToLowerInvariant();
        var journal = $"{SqliteFilesPath}.{key}.journal";
        var snapshot = $"{SqliteFilesPath}.{key}.snapshot-store";
        if (!system.Settings.Config.HasPath(journal))
        {
            var hocon = new StringBuilder();
            Block(hocon, system, "journal", journal, path);
            Block(hocon, system, "snapshot-store", snapshot, path);
            system.Settings.InjectTopLevelFallback(ConfigurationFactory.ParseString(hocon.ToString()));
        }

        return (journal, snapshot);
    }

    private static void Block(StringBuilder hocon, ActorSystem system, string template, string pluginId, string path)
    {
        hocon.Append(pluginId).Append(" {\n");
        foreach (var (name, value) in system.Settings.Config.GetConfig($"{SqliteTemplatePath}.{template}").AsEnumerable())
        {
            hocon.Append(CultureInfo.InvariantCulture, $"  {name} = {Quote(value.GetString())}\n");
        }

        hocon.Append(CultureInfo.InvariantCulture, $"  plugin-id = {Quote(pluginId)}\n  connection-string = {Quote(ConnectionString(path))}\n}}\n");
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
