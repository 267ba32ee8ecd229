using ActorQueue.Actors;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// Where a durable test keeps its journal: a fresh SQLite file in a temporary folder, or, when
/// <c>ACTORQUEUE_TEST_POSTGRES</c> holds a connection string (<c>tests/postgres.sh</c> sets it), the PostgreSQL journal.
/// Every test uses queue names of its own, so tests never see each other's items in a shared database.
/// </summary>
internal sealed class DurableStore : IDisposable
{
    public const string PostgresVariable = "ACTORQUEUE_TEST_POSTGRES";

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "actorqueue-durable-" + Guid.NewGuid().ToString("N"));

    public DurableStore(ActorSystem system)
    {
        Directory.CreateDirectory(_folder);
        if (Postgres is { } connection)
        {
            // Above the embedded defaults (a fallback injected later wins over one injected before it).
            DurableStorage.Configure(system);
            system.Settings.InjectTopLevelFallback(ConfigurationFactory.ParseString($"""
                actorqueue.persistence.postgres.journal.connection-string = "{connection}"
                actorqueue.persistence.postgres.snapshot-store.connection-string = "{connection}"
                """));
        }
    }

    /// <summary>The PostgreSQL connection string the durable tests run against, or <c>null</c> for SQLite.</summary>
    public static string? Postgres => Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } value ? value : null;

    public string Folder => _folder;

    public string DatabasePath => Path.Combine(_folder, "queues.db");

    /// <summary>A durability on this store; <paramref name="clock"/> for delays and backoff.</summary>
    public QueueDurability Durability(TimeProvider? clock = null, RetryPolicy? retry = null, int snapshotEvery = 1000)
    {
        var durability = Postgres is null
            ? new QueueDurability { StoragePath = DatabasePath }
            : new QueueDurability { JournalPluginId = "actorqueue.persistence.postgres.journal", SnapshotPluginId = "actorqueue.persistence.postgres.snapshot-store" };
        return durability with { Clock = clock ?? TimeProvider.System, Retry = retry ?? new RetryPolicy(), SnapshotEvery = snapshotEvery };
    }

    /// <summary>A queue name no other test uses.</summary>
    public static string UniqueName(string label) => $"{label}-{Guid.NewGuid():N}";

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // SQLite's pool may still hold the file for an instant; the temporary folder is cleaned by the system.
        }
    }
}
