using Microsoft.Data.Sqlite;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// The state's lock files: <c>FILE.lock</c>, which this process holds while it uses the state, and the durable queue's
/// name lock file beside it; and what a refused run removes of what it made (<see cref="DisposeAndRemoveIfMade"/>).
/// </summary>
internal sealed partial class RunState
{
    /// <summary>The HResult of a lock another process holds: the errno EWOULDBLOCK on Unix.</summary>
    private const int EWouldBlock = 11;

    /// <summary>The same on Windows: ERROR_SHARING_VIOLATION.</summary>
    private const int SharingViolation = unchecked((int)0x80070020);

    /// <summary>
    /// Closes the state of a run that was refused and removes what it made: the queue's name lock file
    /// (<see cref="CreateQueueLock"/>), the file (a new state), then the lock file, while the lock is still held: deleted
    /// after its release, the lock file could be another process's lock by then, and two processes could lock two files
    /// of that name (h232's review). SQLite removes its own
    /// <c>-wal</c> and <c>-shm</c> as its last connection closes (the queue's pooled ones closed as its disposal completed);
    /// they are never deleted here (another connection's live WAL would be its database's loss). A state that existed is
    /// only closed.
    /// </summary>
    public void DisposeAndRemoveIfMade()
    {
        lock (_gate)
        {
            RemoveQueueLock(); // first: while this state's lock is held
            Remove(_connection, System.IO.Path.GetFullPath(Path), _made, _lock, _lockMade);
        }
    }

    /// <summary>Closes <paramref name="connection"/>, removes the state file and the lock file this open made (each only while its path still names it), and drops the lock.</summary>
    private static void Remove(SqliteConnection? connection, string full, (ulong, ulong)? made, FileStream lockFile, (ulong, ulong)? lockMade)
    {
        connection?.Dispose();
        if (made is { } identity)
        {
            // No SQLite connection is open on the file any more: this state's own is not pooled, and the durable queue's
            // journal connections were closed as its disposal completed (DurableStorage.ClosePooledConnections), the last
            // of them checkpointing the file and removing FILE-wal and FILE-shm. Left open in the pool until the process
            // ended (this cleared every pool itself before), SQLite never checkpointed, and applied that stale WAL to the
            // next database put at this path (a copied state lost its finished jobs: h240's review).
            Delete(full, identity);
        }

        if (lockMade is { } lockIdentity)
        {
            Delete(lockFile.Name, lockIdentity);
        }

        lockFile.Dispose();
    }

    private static void Delete(string path, (ulong, ulong) identity)
    {
        try
        {
            if (FileIdentity.Names(path, identity))
            {
                File.Delete(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left behind: not this run's to remove after all, or it cannot be.
        }
    }

    /// <summary>
    /// Locks <c>FILE.lock</c> for this process (.NET takes an exclusive <c>flock</c> for <see cref="FileShare.None"/>),
    /// telling whether this open created it. A lock taken on a file that is no longer at that name (a refused run
    /// removed its lock file between this open and the lock) is no lock: it is taken again on the file that is there.
    /// </summary>
    /// <exception cref="RunStateException">Another process holds it, or it cannot be created.</exception>
    private static (FileStream Lock, (ulong, ulong)? Made) TakeLock(string path, string full)
    {
        for (var attempt = 0; ; attempt++)
        {
            var (lockFile, made) = OpenLock(path, full);
            if (attempt >= 10 || FileIdentity.Of(lockFile) is { } held && FileIdentity.Names(full + ".lock", held))
            {
                return (lockFile, made);
            }

            lockFile.Dispose();
        }
    }

    private static (FileStream Lock, (ulong, ulong)? Made) OpenLock(string path, string full)
    {
        try
        {
            return FileIdentity.OpenCreating(full + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex.HResult is EWouldBlock or SharingViolation)
        {
            throw new RunStateException($"'{path}' is in use by another actorqueue process (it holds '{path}.lock'); wait for it to end, or use another --state FILE", ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            // .NET's message named the lock file, a path the user never gave.
            throw new RunStateException($"cannot use '{path}': {Commands.Usage.MissingDirectory(path)}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RunStateException($"cannot use '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Makes the durable queue's name lock file (<paramref name="lockPath"/>, <see cref="DurableJobQueue.LockPathOf"/>)
    /// before the queue opens it, unless something is there: one this call made is this run's, and goes again if the run
    /// is refused (<see cref="DisposeAndRemoveIfMade"/>). Made under this state's own lock, which every run and
    /// <c>dead-letters</c> holds before it opens the queue, so no other of them can make or take it meanwhile.
    /// </summary>
    public void CreateQueueLock(string lockPath)
    {
        lock (_gate)
        {
            try
            {
                if (FileIdentity.CreateIfMissing(lockPath) is { } made)
                {
                    _queueLockMade = (lockPath, made);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Not made: the queue's own open says why it cannot be.
            }
        }
    }

    /// <summary>
    /// Removes the queue's name lock file this run made (<see cref="CreateQueueLock"/>), once the queue has let it go:
    /// only after taking its lock again (so never while another process holds it) and only while the path still names
    /// the file made, deleted while held, and while this state's own lock is held too (no run or <c>dead-letters</c> can be
    /// between opening it and locking it).
    /// </summary>
    private void RemoveQueueLock()
    {
        if (_queueLockMade is not var (path, identity))
        {
            return;
        }

        _queueLockMade = null;
        FileIdentity.RemoveUnheld(path, identity); // never while the queue, or another process, holds it
    }
}
