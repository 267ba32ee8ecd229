using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// <c>actorqueue run --state</c> in a real process killed with SIGKILL at a random point, then started again with the
/// same input and state: every job's effect happened once, or twice only if it was running (or its finishing not yet
/// recorded) at the kill; nothing is lost; and the joblog, the output and the dead letters end as in a run never killed.
/// </summary>
/// <remarks>
/// Each run's jobs inherit the run's own value of <see cref="RunVariable"/> and write it into their start and end
/// markers, so every attempt is counted for the run that spawned it, whenever it wrote them. Jobs run in sessions of
/// their own, so the kill leaves the killed run's attempts running, and one it spawned just before the kill may write
/// its start only after it: a single look at the markers after the kill would take such a job for one the killed run
/// never started (CI once saw "job 33 ran 2 times, not 1"). The counts are taken once no process carrying the killed
/// run's value is left and every start has its end. The restart runs exactly its attempts of each job the state did not
/// record finished and none of the others; the killed run ran all the attempts of each job recorded finished and at
/// most the attempts of any other.
/// </remarks>
public sealed class RunStateKillTests(ITestOutputHelper output) : IDisposable
{
    private const int Jobs = 40;

    /// <summary>The environment variable whose value (one per run) each job writes into its markers.</summary>
    private const string RunVariable = "ACTORQUEUE_KILL_TEST_RUN";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>Every seventh job fails (exit 3, after one retry): those are the dead letters.</summary>
    private static bool Fails(int seq) => seq % 7 == 0;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task A_run_killed_at_a_random_point_and_restarted_with_its_state_finishes_every_job_as_a_run_never_killed(int trial)
    {
        var random = new Random(trial * 7919);
        var killAfterStarts = random.Next(1, Jobs - 4);
        var keepOrder = trial % 2 == 0;
        var reference = await References.GetOrAdd(keepOrder, order => new(() => ReferenceRunAsync(order))).Value;

        var dir = Directory.CreateDirectory(_scratch.PathOf("killed")).FullName;
        var jobs = WriteJobs(dir);
        string[] args = ["run", jobs, "-j", "4", "--retries", "1", "-q", "--state", "state.db", "--joblog", "log.tsv", .. keepOrder ? new[] { "-k" } : []];
        var (killedRun, restartRun) = ($"killed-{Guid.NewGuid():N}", $"restart-{Guid.NewGuid():N}");
        string killedOutput;
        int startsSeenAtKill;
        using (var runner = new RunningCli(dir, new Dictionary<string, string> { [RunVariable] = killedRun }, args))
        {
            await Poll.UntilAsync(() => Starts(dir).Count >= killAfterStarts || !CliScratch.IsAlive(runner.Pid),
                TimeSpan.FromSeconds(60), () => $"{killAfterStarts} job starts; seen {Starts(dir).Count}: {runner.Errors}", CliScratch.Tick);
            Assert.True(CliScratch.IsAlive(runner.Pid), $"the run ended before {killAfterStarts} job starts: {runner.Errors}");
            await CliProcess.SignalAsync(runner.Pid, "KILL");
            await runner.ExitAsync();
            killedOutput = runner.Output;
            startsSeenAtKill = Starts(dir).Count;
        }

        Release(dir);
        var finishedBeforeRestart = FinishedInState(Path.Combine(dir, "state.db"));

        var restart = CliProcess.StartInfo(dir, args);
        restart.Environment[RunVariable] = restartRun;
        var restarted = await CliProcess.RunAsync(restart, null);

        // The killed run's attempts may still run (or not yet have marked their start): wait until none of its processes
        // is left and each attempt that began has ended.
        await Poll.UntilAsync(() => !AnyProcessOf(killedRun) && Balanced(dir), TimeSpan.FromSeconds(30),
            "every attempt of the killed run ended and every started attempt ended", CliScratch.Tick);
        var killedRuns = Runs(dir, killedRun);
        var restartRuns = Runs(dir, restartRun);
        Assert.Equal(Ends(dir).Count, killedRuns.Values.Sum() + restartRuns.Values.Sum());
        output.WriteLine($"trial {trial}: killed after {killAfterStarts} starts ({killedRuns.Count} jobs started, " +
                         $"{Starts(dir).Count(m => m.Run == killedRun) - startsSeenAtKill} attempts marked their start only after the kill, " +
                         $"{finishedBeforeRestart.Count} recorded finished); the restart exited {restarted.ExitCode}: {restarted.Errors}");
        Assert.InRange(restarted.ExitCode, 0, 101);
        Assert.DoesNotContain("--state", restarted.Errors, StringComparison.Ordinal);

        for (var seq = 1; seq <= Jobs; seq++)
        {
            var attempts = Fails(seq) ? 2 : 1;
            var finished = finishedBeforeRestart.Contains(seq);
            var (byKilled, byRestart) = (killedRuns.GetValueOrDefault(seq), restartRuns.GetValueOrDefault(seq));
            Assert.True(byRestart == (finished ? 0 : attempts),
                $"job {seq} ran {byRestart} times in the restart, not {(finished ? 0 : attempts)} (recorded finished before the restart: {finished})");
            if (finished)
            {
                Assert.True(byKilled == attempts, $"job {seq}, recorded finished, ran {byKilled} times in the killed run, not {attempts}");
            }
            else
            {
                Assert.True(byKilled <= attempts, $"job {seq}, unfinished at the kill, ran {byKilled} times in the killed run, more than {attempts}");
            }
        }

        // What a run never killed leaves: each job's last joblog record, its output lines, and the failed jobs.
        var log = ReadJobLog(dir);
        Assert.Equal(reference.Log, log.GroupBy(l => l.Seq).Select(g => (g.Key, g.Last().Exit, g.Last().Command)).OrderBy(r => r.Key).ToList());
        var lines = (killedOutput + restarted.Output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(reference.Output, lines.Distinct().Order(StringComparer.Ordinal).ToList());
        Assert.All(lines.GroupBy(l => l), g => Assert.InRange(g.Count(), 1, 2));
        Assert.Equal(reference.Failed, FailedInState(Path.Combine(dir, "state.db")));
        var deadLetters = await CliProcess.RunAsync(dir, null, "dead-letters", "--state", "state.db", "list");
        Assert.Equal(0, deadLetters.ExitCode);
        Assert.Equal(reference.DeadLetters, deadLetters.Output);
    }

    /// <summary>
    /// The run never killed, by whether it keeps order (-k): the same jobs and options give the same reference, so the
    /// trials of one order share one (each trial ran its own: two CLI processes, about 5 s of the class's time, for a
    /// result its twin had already asserted and returned).
    /// </summary>
    private static readonly ConcurrentDictionary<bool, Lazy<Task<Reference>>> References = new();

    private static async Task<Reference> ReferenceRunAsync(bool keepOrder)
    {
        using var scratch = new CliScratch();
        var dir = Directory.CreateDirectory(scratch.PathOf("reference")).FullName;
        var jobs = WriteJobs(dir);
        Release(dir);
        string[] args = ["run", jobs, "-j", "4", "--retries", "1", "-q", "--state", "state.db", "--joblog", "log.tsv", .. keepOrder ? new[] { "-k" } : []];
        var run = await CliProcess.RunAsync(dir, null, args);
        Assert.Equal(Enumerable.Range(1, Jobs).Count(Fails), run.ExitCode);
        var log = ReadJobLog(dir).Select(l => (l.Seq, l.Exit, l.Command)).OrderBy(r => r.Seq).ToList();
        Assert.Equal(Jobs, log.Count);
        var failed = FailedInState(Path.Combine(dir, "state.db"));
        Assert.Equal(Enumerable.Range(1, Jobs).Where(Fails).Select(s => (long)s).ToList(), failed);
        var deadLetters = await CliProcess.RunAsync(dir, null, "dead-letters", "--state", "state.db", "list");
        Assert.Equal(0, deadLetters.ExitCode);
        return new(log, run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList(), failed, deadLetters.Output);
    }

    /// <summary>What a run never killed leaves: each job's last joblog record, its output lines (sorted), the failed jobs and the dead-letter list.</summary>
    private sealed record Reference(List<(long Seq, int Exit, string Command)> Log, List<string> Output, List<long> Failed, string DeadLetters);

    /// <summary>
    /// The jobs: each marks its attempt's start and end in effects.txt with its run (<see cref="RunVariable"/>) and prints
    /// one line; every seventh fails. The last job waits for a file named <c>release</c>, so a run cannot end before the
    /// test has killed it, however fast the machine.
    /// </summary>
    private static string WriteJobs(string dir)
    {
        var path = Path.Combine(dir, "jobs.txt");
        File.WriteAllLines(path, Enumerable.Range(1, Jobs).Select(seq =>
            $"echo s {seq} ${RunVariable} >> effects.txt; {(seq == Jobs ? "while [ ! -f release ]; do sleep 0.01; done" : $"sleep 0.0{seq % 5 + 3}")}; " +
            $"echo e {seq} ${RunVariable} >> effects.txt; echo out {seq}{(Fails(seq) ? "; exit 3" : "")}"));
        return path;
    }

    /// <summary>Lets the last job end.</summary>
    private static void Release(string dir) => File.WriteAllText(Path.Combine(dir, "release"), "");

    private static List<JobLogLine> ReadJobLog(string dir)
    {
        var lines = File.ReadAllText(Path.Combine(dir, "log.tsv")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(CliScratch.JobLogHeader, lines[0]);
        return [.. lines.Skip(1).Select(line =>
        {
            var f = line.Split('\t', 9);
            Assert.True(f.Length == 9, $"a whole joblog record: '{line}'");
            return new JobLogLine(long.Parse(f[0], CultureInfo.InvariantCulture), 0, 0, 0, int.Parse(f[6], CultureInfo.InvariantCulture), 0, f[8]);
        })];
    }

    private static List<(int Seq, string Run)> Starts(string dir) => Markers(dir, "s");

    private static List<(int Seq, string Run)> Ends(string dir) => Markers(dir, "e");

    /// <summary>How many attempts of each job <paramref name="run"/> ran (ended), by sequence number.</summary>
    private static Dictionary<int, int> Runs(string dir, string run) =>
        Ends(dir).Where(m => m.Run == run).GroupBy(m => m.Seq).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Every attempt that marked its start has marked its end, counted by job and run.</summary>
    private static bool Balanced(string dir)
    {
        var ends = Ends(dir).GroupBy(m => m).ToDictionary(g => g.Key, g => g.Count());
        return Starts(dir).GroupBy(m => m).All(g => ends.GetValueOrDefault(g.Key) == g.Count());
    }

    private static List<(int Seq, string Run)> Markers(string dir, string kind)
    {
        var path = Path.Combine(dir, "effects.txt");
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var text = new StreamReader(stream).ReadToEnd();
        return [.. text.Split('\n').Select(line => line.Split(' ')).Where(f => f.Length == 3 && f[0] == kind)
            .Select(f => (int.Parse(f[1], CultureInfo.InvariantCulture), f[2]))];
    }

    /// <summary>
    /// Whether a process with <paramref name="run"/>'s value of <see cref="RunVariable"/> still runs: one of that run's
    /// attempts (its shell or a command the shell started), which can still write markers. The killed runner itself has
    /// been reaped, and a process's environment comes from its parent, so once none is left none appears again.
    /// </summary>
    private static bool AnyProcessOf(string run)
    {
        var entry = $"{RunVariable}={run}\0";
        foreach (var process in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(process), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(process, "environ")).Contains(entry, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Gone, or not ours to read.
                }
            }
        }

        return false;
    }

    private static HashSet<long> FinishedInState(string db) => [.. Query(db, "SELECT seq FROM actorqueue_run_jobs WHERE standing <> 0")];

    private static List<long> FailedInState(string db) => [.. Query(db, "SELECT seq FROM actorqueue_run_jobs WHERE standing = 2 ORDER BY seq")];

    private static List<long> Query(string db, string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var seqs = new List<long>();
        while (reader.Read())
        {
            seqs.Add(reader.GetInt64(0));
        }

        return seqs;
    }
}
