using Microsoft.Data.Sqlite;

namespace ActorQueue.Cli.Jobs;

/// <summary>How a job stands in a run's state: put in the queue, or finished (as <c>--resume</c> counts finished: either way).</summary>
internal enum JobStanding
{
    /// <summary>Read and put in the queue; not finished, so a restart runs it.</summary>
    Queued = 0,

    /// <summary>Finished with exit 0; never runs again.</summary>
    Succeeded = 1,

    /// <summary>Finished and failed after its retries (a dead letter until purged); runs again only once requeued.</summary>
    Failed = 2,
}

/// <summary>A job as the state records it: its command line (its key, with the sequence number) and how it stands.</summary>
/// <param name="Seq">The job's sequence number ({#}).</param>
/// <param name="Command">Its command line as read.</param>
/// <param name="Standing">Queued or finished.</param>
/// <param name="Exit">The exit value of its last attempt (-1 when it did not exit by itself).</param>
/// <param name="Signal">The signal that ended it, or 0.</param>
/// <param name="Attempts">How many attempts it took.</param>
/// <param name="Error">Why it failed, as the runner said it; <c>null</c> unless failed.</param>
internal sealed record StateJob(long Seq, string Command, JobStanding Standing, int Exit, int Signal, int Attempts, string? Error);

/// <summary>The state file's contents are not a run state, or the file cannot be used.</summary>
internal sealed class RunStateException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// <c>--state FILE</c>'s record of the run's jobs, a table in the same SQLite file as the durable job queue: each job
/// read is recorded (sequence number and command line) before it is put in the queue, and once it finished, after its
/// output and joblog record are written. A restart skips the finished jobs, runs the rest again, and refuses an input
/// that no longer gives the recorded jobs. A record counts once its transaction commits, so a SIGKILL loses at most the
/// finishing of the jobs that were ending.
/// </summary>
/// <remarks>
/// One process at a time: <see cref="Open"/> takes an exclusive lock on <c>FILE.lock</c> beside the state (an OS file
/// lock, which the kernel drops when the process ends, SIGKILL included) and holds it until <see cref="Dispose"/>, so a
/// second run (or <c>dead-letters</c>) on the same state is refused rather than journaling the same queue beside the first.
/// The lock file stays (deleting it would let two processes lock two different files of that name), unless this run made
/// it and was refused: then <see cref="DisposeAndRemoveIfMade"/> removes it (and the state file, if this run made that)
/// while still holding the lock. So with the durable queue's own name lock file (<c>FILE.jobs-*.lock</c>): it stays,
/// unless this run made it (<see cref="CreateQueueLock"/>) and was refused.
/// </remarks>
internal sealed partial class RunState : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    /// <summary>The open lock file: held while this process uses the state.</summary>
    private readonly FileStream _lock;

    /// <summary>The lock file's identity if this open created it (it is removed, still held, if the run is refused).</summary>
    private readonly (ulong Device, ulong Inode)? _lockMade;

    /// <summary>The state file's identity if this open created it (a new state: removed with its lock if the run is refused).</summary>
    private readonly (ulong Device, ulong Inode)? _made;

    /// <summary>The queue's name lock file and its identity if this run made it (<see cref="CreateQueueLock"/>).</summary>
    private (string Path, (ulong Device, ulong Inode) Identity)? _queueLockMade;

    /// <summary>Whether the file has the run's table yet: a new or empty database gets it (and WAL) only once the run starts (<see cref="Prepare"/>).</summary>
    private bool _prepared;

    private RunState(string path, SqliteConnection connection, FileStream lockFile, (ulong, ulong)? lockMade, (ulong, ulong)? made, bool prepared)
    {
        Path = path;
        _connection = connection;
        _lock = lockFile;
        _lockMade = lockMade;
        _made = made;
        _prepared = prepared;
    }

    /// <summary>The state file.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens (creating when <paramref name="create"/>) the state file and checks that it is a healthy, writable SQLite
    /// database, writing nothing to it: a new or empty database becomes a state (its table, WAL) only at <see cref="Prepare"/>,
    /// so a run refused before it starts leaves an existing file as it was.
    /// </summary>
    /// <exception cref="RunStateException">The file is missing, corrupt, not a database, unreadable or unwritable, or in use by another process.</exception>
    public static RunState Open(string path, bool create)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            // Before the check that it exists: File.Exists is false for a directory, which dead-letters said did not exist.
            throw new RunStateException($"'{path}' is a directory, not a state file");
        }

        if (!create && !File.Exists(full))
        {
            throw new RunStateException($"'{path}' does not exist");
        }

        // A refusal for a lock another process holds removes nothing: what is there is that process's.
        var (lockFile, lockMade) = TakeLock(path, full);
        (ulong, ulong)? made = null;
        SqliteConnection? connection = null;
        try
        {
            if (create)
            {
                // Made here, under the lock, so what this run made is known exactly (SQLite takes an empty file for an
                // empty database); a file that is there, whoever made it, is not this run's.
                made = FileIdentity.CreateIfMissing(full);
            }

            connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = full,
                Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite, // a dangling link's target: made through it, not this run's
                Pooling = false,
            }.ToString());
            connection.Open();
            Execute(connection, "PRAGMA busy_timeout = 5000;");
            if (Scalar(connection, "PRAGMA quick_check;") is not "ok" and var result)
            {
                throw new RunStateException($"'{path}' failed SQLite's integrity check ({result})");
            }

            // A file that is no run's state is refused before anything is written to it: dead-letters made any existing
            // file (an empty one, another program's SQLite database) a state, writing its tables into it; run did the
            // same to another program's database. An empty database (a new file) becomes one only for run.
            var prepared = Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'actorqueue_run_jobs';") is 1L;
            if (!prepared)
            {
                if (!create)
                {
                    throw new RunStateException($"'{path}' is no run's state (it has no record of a run's jobs): give the FILE of a run's --state");
                }

                if (Scalar(connection, "SELECT count(*) FROM sqlite_master;") is not 0L)
                {
                    throw new RunStateException($"'{path}' is an SQLite database of something else, not a run's state (it has no record of a run's jobs): give a new FILE, or an earlier run's --state FILE");
                }
            }

            return new RunState(path, connection, lockFile, lockMade, made, prepared);
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            Remove(connection, full, made, lockFile, lockMade);
            throw new RunStateException($"cannot use '{path}': {ex.Message}", ex);
        }
        catch
        {
            Remove(connection, full, made, lockFile, lockMade);
            throw;
        }
    }

    /// <summary>
    /// Makes the file a run's state, as the run starts (the durable queue opens beside it): WAL, as the queue's journal
    /// uses it (the queue and this table write the one file side by side), and the table of the run's jobs.
    /// </summary>
    /// <exception cref="RunStateException">The file cannot be written.</exception>
    public void Prepare() => Guard(PrepareHeld);

    /// <summary><see cref="Prepare"/>, under the gate.</summary>
    private void PrepareHeld()
    {
        if (_prepared)
        {
            return;
        }

        Execute(_connection, "PRAGMA journal_mode = WAL;");
        Execute(_connection, """
            CREATE TABLE IF NOT EXISTS actorqueue_run_jobs (
                seq INTEGER PRIMARY KEY,
                command TEXT NOT NULL,
                standing INTEGER NOT NULL,
                exit_value INTEGER NOT NULL DEFAULT 0,
                signal INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                error TEXT);
            """);
        _prepared = true;
    }

    /// <summary>Every recorded job, by sequence number.</summary>
    /// <exception cref="RunStateException">The file cannot be read.</exception>
    public Dictionary<long, StateJob> Jobs()
    {
        var jobs = new Dictionary<long, StateJob>();
        Guard(() =>
        {
            if (!_prepared)
            {
                return; // a new or empty database: no job recorded yet
            }

            using var query = _connection.CreateCommand();
            query.CommandText = "SELECT seq, command, standing, exit_value, signal, attempts, error FROM actorqueue_run_jobs ORDER BY seq;";
            using var reader = query.ExecuteReader();
            while (reader.Read())
            {
                var job = new StateJob(reader.GetInt64(0), reader.GetString(1), (JobStanding)reader.GetInt32(2), reader.GetInt32(3),
                    reader.GetInt32(4), reader.GetInt32(5), reader.IsDBNull(6) ? null : reader.GetString(6));
                jobs[job.Seq] = job;
            }
        });
        return jobs;
    }

    /// <summary>Records a job read (before it is put in the queue); a job already recorded keeps its record.</summary>
    /// <exception cref="RunStateException">The record could not be written.</exception>
    public void Queued(long seq, string command) =>
        Write("INSERT OR IGNORE INTO actorqueue_run_jobs (seq, command, standing) VALUES ($seq, $command, 0);",
            ("$seq", seq), ("$command", command));

    /// <summary>Records a job as finished: succeeded, or failed with its last attempt's end.</summary>
    /// <exception cref="RunStateException">The record could not be written.</exception>
    public void Finished(long seq, string command, bool succeeded, int exit, int signal, int attempts, string? error) =>
        Write("""
              INSERT INTO actorqueue_run_jobs (seq, command, standing, exit_value, signal, attempts, error)
              VALUES ($seq, $command, $standing, $exit, $signal, $attempts, $error)
              ON CONFLICT (seq) DO UPDATE SET standing = $standing, exit_value = $exit, signal = $signal, attempts = $attempts, error = $error;
              """,
            ("$seq", seq), ("$command", command), ("$standing", (int)(succeeded ? JobStanding.Succeeded : JobStanding.Failed)),
            ("$exit", exit), ("$signal", signal), ("$attempts", attempts), ("$error", (object?)error ?? DBNull.Value));

    /// <summary>Marks failed jobs as not finished, so the next run runs them again (<c>dead-letters requeue</c>).</summary>
    /// <exception cref="RunStateException">The change could not be written.</exception>
    public void Requeue(IEnumerable<long> seqs)
    {
        Guard(() =>
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var seq in seqs)
            {
                using var command = _connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = "UPDATE actorqueue_run_jobs SET standing = 0, error = NULL WHERE seq = $seq AND standing = 2;";
                command.Parameters.AddWithValue("$seq", seq);
                command.ExecuteNonQuery();
            }

            transaction.Commit();
        });
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _connection.Dispose();
            _lock.Dispose();
        }
    }

    private void Write(string sql, params (string Name, object Value)[] parameters) =>
        Guard(() =>
        {
            PrepareHeld(); // a record is the run's: the file is a state by then
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }

            command.ExecuteNonQuery();
        });

    /// <summary>One statement at a time on the one connection (workers finish jobs concurrently); SQLite's errors become the state's.</summary>
    private void Guard(Action action)
    {
        lock (_gate)
        {
            try
            {
                action();
            }
            catch (SqliteException ex)
            {
                throw new RunStateException($"'{Path}': {ex.Message}", ex);
            }
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
