using System.Security.Cryptography;
using System.Text;

namespace ActorQueue.Actors;

/// <summary>
/// A durable queue's hold on its name in a SQLite file, across processes: an exclusive lock on a file of its own beside
/// the database (<c>queues.db.orders-1a2b3c4d.lock</c>: the name, made safe, and a hash of the exact name, so names that
/// differ only in case or in unsafe characters never share one). .NET takes an exclusive <c>flock</c> for
/// <see cref="FileShare.None"/> on Unix and a sharing lock on Windows; the operating system drops it when the process
/// ends, however it ends, so a killed process leaves the name free. The file stays (deleting it would let a process that
/// opened it just before lock a file nobody else sees). The path is compared by the file system itself, so two spellings
/// of one file on a case-insensitive disk meet at the same lock.
/// </summary>
internal sealed class QueueFileLock : IDisposable
{
    private readonly FileStream _held;

    private QueueFileLock(FileStream held) => _held = held;

    /// <summary>Takes the lock for queue <paramref name="name"/> in the SQLite file <paramref name="database"/> (a full path).</summary>
    /// <exception cref="InvalidOperationException">Another process (or this one, through another spelling of the path) holds it.</exception>
    /// <exception cref="QueueStorageException">The lock file cannot be created.</exception>
    public static QueueFileLock Take(string database, string name)
    {
        var path = PathFor(database, name);
        try
        {
            return new QueueFileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1));
        }
        catch (IOException error) when (File.Exists(path))
        {
            throw new InvalidOperationException(
                $"A durable queue named '{name}' is already open on the SQLite file '{database}' in another process (or in this one under another spelling of the path): it holds '{path}'; close it first",
                error);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new QueueStorageException($"Durable queue '{name}': cannot create its lock file '{path}' beside the SQLite file: {error.Message}", error);
        }
    }

    /// <summary>The lock file's path for <paramref name="name"/> beside <paramref name="database"/>.</summary>
    internal static string PathFor(string database, string name)
    {
        var safe = new StringBuilder(Math.Min(name.Length, 32));
        foreach (var c in name.AsSpan(0, Math.Min(name.Length, 32)))
        {
            safe.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        }

        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(name)), 0, 4).ToLowerInvariant();
        return $"{database}.{safe}-{hash}.lock";
    }

    /// <summary>Gives the name back (the file stays).</summary>
    public void Dispose() => _held.Dispose();
}
