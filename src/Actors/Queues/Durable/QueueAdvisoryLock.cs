using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Akka.Configuration;
using LinqToDB;
using LinqToDB.Data;

namespace ActorQueue.Actors;

/// <summary>
/// A durable queue's hold on its name in a PostgreSQL database, across processes and machines: a session advisory lock
/// (<c>pg_try_advisory_lock</c>) on a key made from the name, held by a connection of its own (unpooled, so closing it
/// ends the session) for as long as the queue is open. The server drops the lock when that session ends, however the
/// process ends — a kill included, once the server notices the closed connection. The connection is opened with the
/// journal's own provider and connection string (the application references Npgsql for the journal already).
/// </summary>
/// <remarks>
/// The key is the first 8 bytes of SHA-256 of <c>actorqueue:</c> and the exact name: two names share a key only by a
/// 64-bit collision. Advisory locks are per database, so two journals in different schemas of one database share the
/// name space (a queue name open in both is refused). Should the server drop the lock's session while the queue runs
/// (a server restart), the lock is gone without notice; the journal's own connections fail then too.
/// </remarks>
internal sealed class QueueAdvisoryLock : IDisposable
{
    private readonly DataConnection _session;

    private QueueAdvisoryLock(DataConnection session) => _session = session;

    /// <summary>
    /// Takes the lock when <paramref name="journal"/> (a journal plugin's configuration) is a PostgreSQL one with a
    /// connection string; <c>null</c> for any other journal, which gets no guard across processes.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another session holds the name.</exception>
    /// <exception cref="QueueStorageException">The database cannot be reached or the lock cannot be asked for.</exception>
    public static QueueAdvisoryLock? TakeIfPostgres(Config journal, string name)
    {
        var provider = journal.GetString("provider-name", "");
        var connection = journal.GetString("connection-string", "");
        return provider.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase) && connection.Length > 0 ? Take(provider, connection, name) : null;
    }

    /// <summary>Takes the lock for queue <paramref name="name"/> through a new session of <paramref name="provider"/> on <paramref name="connectionString"/>.</summary>
    /// <exception cref="InvalidOperationException">Another session holds the name.</exception>
    /// <exception cref="QueueStorageException">The database cannot be reached or the lock cannot be asked for.</exception>
    public static QueueAdvisoryLock Take(string provider, string connectionString, string name)
    {
        DataConnection? session = null;
        bool taken;
        try
        {
            session = new DataConnection(new DataOptions().UseConnectionString(provider, Unpooled(connectionString)));
            using var command = session.OpenDbConnection().CreateCommand();
            command.CommandText = "SELECT pg_try_advisory_lock(@key)";
            var key = command.CreateParameter();
            key.ParameterName = "key";
            key.Value = KeyOf(name);
            command.Parameters.Add(key);
            taken = command.ExecuteScalar() is true;
        }
        catch (Exception error) when (error is DbException or InvalidOperationException or ArgumentException or LinqToDBException)
        {
            session?.Dispose();
            throw new QueueStorageException($"Durable queue '{name}': cannot take its lock in the PostgreSQL database of its journal: {error.Message}", error);
        }

        if (!taken)
        {
            session.Dispose();
            throw new InvalidOperationException(
                $"A durable queue named '{name}' is already open on the PostgreSQL database of its journal, in another process (its advisory lock {KeyOf(name)} is held); close it first");
        }

        return new QueueAdvisoryLock(session);
    }

    /// <summary>The advisory lock's key for <paramref name="name"/>.</summary>
    internal static long KeyOf(string name) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("actorqueue:" + name)), 0);

    /// <summary><paramref name="connectionString"/> without pooling: a pooled session would keep the lock after its close.</summary>
    private static string Unpooled(string connectionString) => new DbConnectionStringBuilder { ConnectionString = connectionString, ["Pooling"] = "false" }.ConnectionString;

    /// <summary>Gives the name back: the session ends, and the server drops its lock.</summary>
    public void Dispose() => _session.Dispose();
}
