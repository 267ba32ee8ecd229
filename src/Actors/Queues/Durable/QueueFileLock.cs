using System.Security.Cryptography;
using System.Text;

namespace ActorQueue.Actors;

/// <summary>
/// A durable queue's hold on its name in a SQLite file, across processes: an exclusive lock on a file of its own beside
/// the database (<c>queues.db.orders-1a2b3c4d.lock</c>: the name, made safe, and a hash of the exact name, so names that
/// differ only in case or in unsafe characters never share one). .NET takes an exclusive <c>flock</c> for
/// <see cref="FileShare.None"/> on Unix and a sharing lock on Windows; the operating system drops it when the process
/// ends, however it ends, so a killed process leaves the name free. The file stays (deleting it would let a process that
/// opened it just before lock a file nobody else sees); should something else remove or replace it between an open and
/// its lock, the lock is taken again on the file that is there (checked by device and inode on Linux, where /proc tells
/// an open file's identity; on Windows the open is the lock). The path is compared by the file system itself, so two
/// spellings of one file on a case-insensitive disk meet at the same lock.
/// </summary>
internal sealed class QueueFileLock : IDisposable
{
    private readonly FileStream _held;

    private QueueFileLock(FileStream held) => _held = held;

    /// <summary>How many times <see cref="Take(string, string)"/> locks a file that is then no longer at the lock's path before it gives up.</summary>
    internal const int MaxAttempts = 10;

    /// <summary>Takes the lock for queue <paramref name="name"/> in the SQLite file <paramref name="database"/> (a full path).</summary>
    /// <exception cref="InvalidOperationException">Another process (or this one, through another spelling of the path) holds it.</exception>
    /// <exception cref="QueueStorageException">The lock file cannot be created, or it was removed or replaced each time it was locked.</exception>
    public static QueueFileLock Take(string database, string name) => Take(database, name, afterLock: null);

    /// <summary>
    /// Takes the lock, as <see cref="Take(string, string)"/>: a lock taken on a file that is no longer at the lock's path
    /// (another process removed or replaced the lock file between this open and its lock) is no lock, since a process that
    /// opens the path next locks another file; it is taken again, on the file that is there.
    /// </summary>
    /// <param name="database">The SQLite file (a full path).</param>
    /// <param name="name">The queue's name.</param>
    /// <param name="afterLock">For tests: runs with the lock file's path once each open has locked it, before the check.</param>
    internal static QueueFileLock Take(string database, string name, Action<string>? afterLock)
    {
        var path = PathFor(database, name);
        for (var attempt = 1; ; attempt++)
        {
            var held = Open(path, database, name);
            bool named;
            try
            {
                afterLock?.Invoke(path);
                named = UnixFileIdentity.StillNamed(path, held);
            }
            catch
            {
                held.Dispose(); // else the lock stayed taken until the handle was finalized
                throw;
            }

            if (named)
            {
                return new QueueFileLock(held);
            }

            held.Dispose();
            if (attempt == MaxAttempts)
            {
                throw new QueueStorageException(
                    $"Durable queue '{name}': its lock file '{path}' beside the SQLite file was removed or replaced each of the {MaxAttempts} times it was locked; whatever removes it must stop");
            }
        }
    }

    /// <summary>Opens the lock file, creating it, and locks it (an exclusive <c>flock</c> on Unix, a sharing lock on Windows).</summary>
    private static FileStream Open(string path, string database, string name)
    {
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
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
