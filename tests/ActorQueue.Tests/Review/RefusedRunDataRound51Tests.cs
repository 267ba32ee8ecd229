using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;
using Microsoft.Data.Sqlite;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 51 (h232's review): a run refused with a usage error changed or removed files that were not its own. It took
/// as "made by this run" whatever existed after an open that failed or waited (a file someone else made meanwhile),
/// truncated an existing joblog (and cut its last record) before the run was accepted, and crashed (exit 134) when the
/// durable queue's name lock was held. Each test makes the competing file or lock itself, at a point the run is known to
/// have reached (no timing).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("macos")]
public sealed class RefusedRunDataRound51Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A run whose --state open waits for the database (another connection holds it) and then fails leaves the files
    /// that connection made meanwhile: here its live WAL, S-wal, whose loss is its database's (finding 6 of h232's
    /// review; finding 1 is the same recording of what existed after a failed open, for the joblog). The run waits for
    /// the database for SQLite's busy time (about 30 s). Failed before: "S-wal: another connection's live WAL was removed
    /// by the refused run". Mutant: the state's files recorded by path after its failed open (fails alike).
    /// </summary>
    [Fact]
    public async Task A_refused_state_open_leaves_the_files_others_made_while_it_waited()
    {
        var state = _scratch.PathOf("S");
        await using var holder = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = state, Pooling = false }.ToString());
        await holder.OpenAsync();
        // Exclusive locking: the lock stays after each write, so the run's first read waits (and at last fails).
        await Execute(holder, "PRAGMA locking_mode = EXCLUSIVE; CREATE TABLE mine (x); INSERT INTO mine VALUES (1);");
        Assert.False(File.Exists(state + "-wal"));

        using var run = new RunningCli(_scratch.Dir, "run", "--state", "S", "true", ":::", "a");
        // The run holds S.lock and has S open: it is inside the state's open, waiting for the database.
        await Poll.UntilAsync(() => CliProcess.HasOpen(run.Pid, state), ClusterNodes.StepTimeout, () => $"the run opened S: {run.Errors}", CliScratch.Tick);
        await Execute(holder, "PRAGMA journal_mode = WAL; INSERT INTO mine VALUES (2);"); // the holder's WAL, made meanwhile
        Assert.True(CliProcess.HasOpen(run.Pid, state), "the run still waits for the database after the WAL was made");
        var identity = Inode(state + "-wal");
        Assert.NotNull(identity);

        Assert.Equal(255, await run.ExitAsync());
        Assert.StartsWith("actorqueue: --state: cannot use 'S': ", run.Errors, StringComparison.Ordinal);
        Assert.True(File.Exists(state + "-wal"), "S-wal: another connection's live WAL was removed by the refused run");
        Assert.Equal(identity, Inode(state + "-wal"));
        Assert.False(File.Exists(state + ".lock"), "the refused run left the lock file it made");
        await using var count = holder.CreateCommand();
        count.CommandText = "SELECT count(*) FROM mine;";
        Assert.Equal(2L, await count.ExecuteScalarAsync());
    }

    /// <summary>
    /// A run refused because the durable queue's own lock is held by another process is one line and exit 255, and the
    /// existing joblog keeps its records (it was cut to its header before the queue opened). Failed before: exit 134
    /// (an unhandled InvalidOperationException) and "the joblog was changed" (113 bytes cut to the 66 of the header).
    /// Mutant: the joblog truncated at its open again (fails on the joblog's bytes).
    /// </summary>
    [Fact]
    public async Task A_run_refused_for_a_held_queue_lock_keeps_the_joblog()
    {
        // A state of no jobs: the joblog of the next run is a new one (not resumed), which was cut to its header at its open.
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S")).ExitCode);
        var joblog = JobLogWithRecord("J", complete: true);
        var queueLock = Directory.GetFiles(_scratch.Dir, "S.jobs-*.lock").Single();
        await using var held = new FileStream(queueLock, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var before = _scratch.Entries();
        var stateBytes = await File.ReadAllBytesAsync(_scratch.PathOf("S"));

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "--joblog", "J", "--log", "L", "--results", "R", "echo {}", ":::", "a");

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        Assert.StartsWith("actorqueue: --state: cannot use 'S': ", result.Errors, StringComparison.Ordinal);
        Assert.Single(result.Errors.TrimEnd('\n').Split('\n'));
        Assert.True(joblog.AsEnumerable().SequenceEqual(await File.ReadAllBytesAsync(_scratch.PathOf("J"))), "the joblog was changed");
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}]");
        Assert.Equal(stateBytes, await File.ReadAllBytesAsync(_scratch.PathOf("S")));
    }

    /// <summary>
    /// A run refused because its state belongs to another input changes no existing file: the joblog keeps its
    /// incomplete last record (no "dropped" line, as no job runs again), an existing log gets none of the queue's events,
    /// and an existing empty joblog stays empty. Failed before: stderr began "actorqueue: --joblog: dropped an incomple"
    /// (and the joblog lost its last record; the log got "Queue started/stopping/stopped"). Mutants: the last record cut
    /// at the joblog's open again (fails); the log's events not held (fails on the log).
    /// </summary>
    [Fact]
    public async Task A_run_refused_for_another_input_changes_no_existing_joblog()
    {
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--state", "S", "--joblog", "J", "echo {}", ":::", "a", "b")).ExitCode);
        await File.AppendAllTextAsync(_scratch.PathOf("J"), "3\t:\t1765000000.000\t0.001\t0\t2\t0\t0\techo cut sho");
        var joblog = await File.ReadAllBytesAsync(_scratch.PathOf("J"));
        await File.WriteAllTextAsync(_scratch.PathOf("L"), "user log line\n");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "--joblog", "J", "--log", "L", "echo {}", ":::", "x", "y");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith("actorqueue: --state: ", result.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("dropped", result.Errors, StringComparison.Ordinal);
        Assert.True(joblog.AsEnumerable().SequenceEqual(await File.ReadAllBytesAsync(_scratch.PathOf("J"))), "the joblog was changed");
        Assert.Equal("user log line\n", await File.ReadAllTextAsync(_scratch.PathOf("L")));

        await File.WriteAllBytesAsync(_scratch.PathOf("E"), []);
        var empty = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "--joblog", "E", "echo {}", ":::", "x", "y");
        Assert.Equal(255, empty.ExitCode);
        Assert.Equal(0, new FileInfo(_scratch.PathOf("E")).Length);
    }

    /// <summary>
    /// A run refused at its joblog (another run writes it) leaves an existing empty --state file as it was: no tables,
    /// no journal. Failed before: "the empty state file became 8192 bytes". Mutant: the state's tables written at its open again (fails).
    /// </summary>
    [Fact]
    public async Task A_run_refused_at_its_joblog_leaves_an_existing_empty_state_empty()
    {
        await File.WriteAllBytesAsync(_scratch.PathOf("S"), []);
        JobLogWithRecord("J", complete: true);
        await using var writer = new FileStream(_scratch.PathOf("J"), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        writer.Lock(0, 1); // as a run writing it holds it
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "--joblog", "J", "true", ":::", "a");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith("actorqueue: --joblog: cannot write 'J': another run is writing it", result.Errors, StringComparison.Ordinal);
        var length = new FileInfo(_scratch.PathOf("S")).Length;
        Assert.True(length == 0, $"the empty state file became {length} bytes");
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}]");
    }

    /// <summary>
    /// A joblog another run writes is not this run's, even when it made the state: refused, the run removes its own
    /// new state (and lock) and leaves the joblog with its records. (A control of the removal by identity: it passed
    /// before.) Mutant: the joblog recorded as made after its failed open (fails: the joblog is removed).
    /// </summary>
    [Fact]
    public async Task A_joblog_another_run_writes_is_never_removed()
    {
        var joblog = JobLogWithRecord("J", complete: true);
        await using var writer = new FileStream(_scratch.PathOf("J"), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        writer.Lock(0, 1);
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "--log", "L", "--joblog", "J", "true", ":::", "a");

        Assert.Equal(255, result.ExitCode);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}], removed [{string.Join(", ", before.Except(_scratch.Entries()))}]");
        Assert.True(joblog.AsEnumerable().SequenceEqual(await File.ReadAllBytesAsync(_scratch.PathOf("J"))), "the joblog was changed");
    }

    /// <summary>A joblog of one finished job, and an incomplete record when not <paramref name="complete"/>; its bytes.</summary>
    private byte[] JobLogWithRecord(string name, bool complete)
    {
        var text = CliScratch.JobLogHeader + "\n1\t:\t1765000000.000\t0.001\t0\t2\t0\t0\techo precious" + (complete ? "\n" : "");
        File.WriteAllText(_scratch.PathOf(name), text);
        return File.ReadAllBytes(_scratch.PathOf(name));
    }

    private static (ulong, ulong)? Inode(string path) => ActorQueue.Cli.Jobs.FileIdentity.Of(path);

    private static async Task Execute(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
