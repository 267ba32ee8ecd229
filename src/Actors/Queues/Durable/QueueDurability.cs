namespace ActorQueue.Actors;

/// <summary>
/// Makes a queue durable: its router journals every accepted item, every start, completion, failure and dead letter on
/// Akka.Persistence, so a queue created again under the same name after a crash runs every item that had not finished,
/// and never again one that had. Items are written with System.Text.Json, so <c>T</c> must round-trip through it.
/// </summary>
/// <remarks>
/// Storage is SQLite in one file (<see cref="StoragePath"/>) unless <see cref="JournalPluginId"/> names a journal
/// configured in HOCON (PostgreSQL, SQL Server: see <c>hocon/persistence.conf</c>). Work is at least once: an item
/// running when the process died runs again, so handlers must be idempotent.
/// </remarks>
public sealed record QueueDurability
{
    /// <summary>
    /// The durable router's features (priorities, delayed items, retries, dead letters) on Akka's in-memory journal:
    /// nothing survives the process, and nothing is written to disk.
    /// </summary>
    public static QueueDurability InMemory { get; } = new()
    {
        JournalPluginId = "akka.persistence.journal.inmem",
        SnapshotPluginId = "akka.persistence.snapshot-store.inmem",
    };

    /// <summary>The SQLite file used when no <see cref="StoragePath"/> is given: <c>ActorQueue/queues.db</c> under the user's local application data.</summary>
    public static string DefaultStoragePath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "ActorQueue", "queues.db");

    /// <summary>The SQLite database file (created with its folder when missing); <c>null</c> for <see cref="DefaultStoragePath"/>. Ignored when <see cref="JournalPluginId"/> is set.</summary>
    public string? StoragePath
    {
        get;
        init => field = value is null || !string.IsNullOrWhiteSpace(value)
            ? value
            : throw new ArgumentException($"StoragePath must be a file path or null, got '{value}'", nameof(StoragePath));
    }

    /// <summary>
    /// The HOCON path of an Akka.Persistence journal to use instead of the SQLite file (for example
    /// <c>actorqueue.persistence.postgres.journal</c>); <c>null</c> for SQLite. Set <see cref="SnapshotPluginId"/> with it.
    /// </summary>
    public string? JournalPluginId
    {
        get;
        init => field = PluginId(value, nameof(JournalPluginId));
    }

    /// <summary>The HOCON path of the snapshot store that goes with <see cref="JournalPluginId"/>.</summary>
    public string? SnapshotPluginId
    {
        get;
        init => field = PluginId(value, nameof(SnapshotPluginId));
    }

    /// <summary>How often an item is tried, and how long it waits between tries, before it becomes a dead letter.</summary>
    public RetryPolicy Retry
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Retry));
    } = new();

    /// <summary>After how many journaled events a snapshot is taken and the events before it deleted (at least 1). Default 1000.</summary>
    public int SnapshotEvery
    {
        get;
        init => field = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(SnapshotEvery), value, $"SnapshotEvery must be >= 1, got {value}");
    } = 1000;

    /// <summary>The clock for delayed items and retry backoff; <see cref="TimeProvider.System"/> by default (tests pass a fake one).</summary>
    public TimeProvider Clock
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Clock));
    } = TimeProvider.System;

    /// <summary>
    /// A plugin id as given: a HOCON path, or <c>null</c>. A blank one is refused: Akka reads "" as its default plugin,
    /// the in-memory journal, so a setting read as empty made a queue that kept nothing across a restart, silently.
    /// </summary>
    private static string? PluginId(string? value, string key) =>
        value is null || !string.IsNullOrWhiteSpace(value)
            ? value
            : throw new ArgumentException($"{key} must be a HOCON path or null, got '{value}'", key);

    /// <summary>The SQLite file this durability writes to, or <c>null</c> when it uses a configured journal.</summary>
    internal string? SqlitePath => JournalPluginId is null ? Path.GetFullPath(StoragePath ?? DefaultStoragePath) : null;
}

/// <summary>
/// How a failing item is retried: up to <see cref="MaxAttempts"/> tries, the n-th retry after
/// <c>min(InitialDelay × Multiplier^(n-1), MaxDelay)</c>, spread by ± <see cref="Jitter"/> of that delay; an item whose
/// last try fails becomes a dead letter.
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>How many times an item is tried in all (at least 1). Default 3.</summary>
    public int MaxAttempts
    {
        get;
        init => field = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxAttempts), value, $"MaxAttempts must be >= 1, got {value}");
    } = 3;

    /// <summary>The wait before the first retry (zero or more). Default 1 s.</summary>
    public TimeSpan InitialDelay
    {
        get;
        init => field = value >= TimeSpan.Zero
            ? value
            : throw new ArgumentOutOfRangeException(nameof(InitialDelay), value, $"InitialDelay must be >= 0, got {value}");
    } = TimeSpan.FromSeconds(1);

    /// <summary>What each further retry multiplies the wait by (at least 1). Default 2.</summary>
    public double Multiplier
    {
        get;
        init => field = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Multiplier), value, $"Multiplier must be >= 1, got {value}");
    } = 2;

    /// <summary>The longest wait between two tries. Default 5 minutes.</summary>
    public TimeSpan MaxDelay
    {
        get;
        init => field = value >= TimeSpan.Zero
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDelay), value, $"MaxDelay must be >= 0, got {value}");
    } = TimeSpan.FromMinutes(5);

    /// <summary>The share of a wait by which it is randomly lengthened or shortened, between 0 and 1. Default 0.2.</summary>
    public double Jitter
    {
        get;
        init => field = value is >= 0 and <= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Jitter), value, $"Jitter must be between 0 and 1, got {value}");
    } = 0.2;

    /// <summary>The wait before retry number <paramref name="retry"/> (1 for the first), with <paramref name="unitRandom"/> in [0, 1) choosing the jitter.</summary>
    /// <param name="retry">Which retry, from 1.</param>
    /// <param name="unitRandom">A random number in [0, 1).</param>
    /// <returns>The wait, never negative.</returns>
    public TimeSpan DelayBefore(int retry, double unitRandom)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retry, 1);
        var baseTicks = Math.Min(InitialDelay.Ticks * Math.Pow(Multiplier, retry - 1), MaxDelay.Ticks);
        var spread = baseTicks * Jitter * ((2 * unitRandom) - 1);
        return TimeSpan.FromTicks((long)Math.Max(0, baseTicks + spread));
    }
}

/// <summary>An item that failed every try, kept until it is re-queued or purged.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Id">The item's number in its queue, for <c>RequeueDeadLettersAsync</c> and <c>PurgeDeadLettersAsync</c>.</param>
/// <param name="Item">The item.</param>
/// <param name="Attempts">How many times it was tried.</param>
/// <param name="LastError">The last failure's exception type and message.</param>
public sealed record DeadLetter<T>(long Id, T Item, int Attempts, string LastError);

/// <summary>
/// A durable queue's storage cannot be used: the database file is corrupt, unreadable or unwritable, or its journal failed
/// to recover; or an item stored in it cannot be read back as the queue's item type (what the error handler hears of such
/// an item, which is then a dead letter).
/// </summary>
public sealed class QueueStorageException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public QueueStorageException()
        : base("The queue's storage cannot be used.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message, naming the storage.</param>
    public QueueStorageException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">The message, naming the storage.</param>
    /// <param name="innerException">The cause.</param>
    public QueueStorageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>
    /// Whether the queue has logged this failure as an error already, naming the item by its id (a durable queue's item it
    /// cannot read back): a batch's collector that hears of it after the batch returned logs it no second time (round 46).
    /// </summary>
    internal bool LoggedByQueue { get; init; }
}
