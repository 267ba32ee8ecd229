using ActorQueue.Actors;
using Akka.Configuration;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// One writer per durable queue name on a PostgreSQL journal, across processes: the queue holds a session advisory lock
/// on its name. The PostgreSQL cases run under <c>tests/postgres.sh</c> (which sets <c>ACTORQUEUE_TEST_POSTGRES</c>) and
/// are skipped without a server; a second session stands in for another process, since the in-process guard answers
/// first within one.
/// </summary>
public sealed class DurableAdvisoryLockTests : ActorQueueTestKit
{
    [PostgresFact]
    public async Task A_queue_whose_name_another_session_holds_is_refused_and_opens_once_that_session_ends()
    {
        using var store = new DurableStore(Sys);
        var name = DurableStore.UniqueName("advisory");
        var other = QueueAdvisoryLock.Take("PostgreSQL.15", DurableStore.Postgres!, name);
        try
        {
            var refused = Assert.Throws<InvalidOperationException>(() => new BoundedQueue<int>(10, store.Durability(), name, system: Sys));
            Assert.Contains($"'{name}'", refused.Message, StringComparison.Ordinal);
            Assert.Contains("PostgreSQL", refused.Message, StringComparison.Ordinal);

            // Another name on the same database is not the other session's.
            await using var another = new BoundedQueue<int>(10, store.Durability(), name + "-another", system: Sys);
            await Within(another.StartAsync());
        }
        finally
        {
            other.Dispose();
        }

        await using (var queue = new BoundedQueue<int>(10, store.Durability(), name, system: Sys))
        {
            await Within(queue.StartAsync());

            // While the queue is open, its own session holds the name against every other.
            Assert.Throws<InvalidOperationException>(() => QueueAdvisoryLock.Take("PostgreSQL.15", DurableStore.Postgres!, name));
        }

        // Disposed, it gave the name back: its session ended, not returned to a pool with the lock still held.
        QueueAdvisoryLock.Take("PostgreSQL.15", DurableStore.Postgres!, name).Dispose();
    }

    [PostgresFact]
    public void An_unreachable_database_is_a_storage_error_naming_the_queue()
    {
        var error = Assert.Throws<QueueStorageException>(() =>
            QueueAdvisoryLock.Take("PostgreSQL.15", "Host=127.0.0.1;Port=1;Username=nobody;Database=none;Timeout=2", "unreachable"));
        Assert.Contains("'unreachable'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_a_postgres_journal_with_a_connection_string_takes_a_lock()
    {
        Assert.Null(QueueAdvisoryLock.TakeIfPostgres(ConfigurationFactory.ParseString("""provider-name = "SQLite.MS", connection-string = "Data Source=x.db" """), "q"));
        Assert.Null(QueueAdvisoryLock.TakeIfPostgres(ConfigurationFactory.ParseString("""provider-name = "PostgreSQL.15", connection-string = "" """), "q"));
        Assert.Null(QueueAdvisoryLock.TakeIfPostgres(ConfigurationFactory.ParseString("class = \"Akka.Persistence.Journal.MemoryJournal, Akka.Persistence\""), "q"));
    }

    [Fact]
    public void Each_name_has_its_own_key_and_the_same_name_always_the_same()
    {
        Assert.Equal(QueueAdvisoryLock.KeyOf("orders"), QueueAdvisoryLock.KeyOf("orders"));
        Assert.NotEqual(QueueAdvisoryLock.KeyOf("orders"), QueueAdvisoryLock.KeyOf("Orders"));
        Assert.NotEqual(QueueAdvisoryLock.KeyOf("orders"), QueueAdvisoryLock.KeyOf("orders "));
    }
}

/// <summary>A fact that needs the PostgreSQL server of <c>tests/postgres.sh</c>: skipped, saying so, without one.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    /// <summary>Skips the fact unless <c>ACTORQUEUE_TEST_POSTGRES</c> holds a connection string.</summary>
    public PostgresFactAttribute()
    {
        if (DurableStore.Postgres is null)
        {
            Skip = $"needs PostgreSQL: run tests/postgres.sh (it sets {DurableStore.PostgresVariable})";
        }
    }
}
