using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 33's adversarial review of <c>actorqueue run</c> (helper 143): an interruption while the input is still being
/// opened or read before any job starts, the summary's count of jobs read and not started, and the summary's hint with
/// <c>--state</c>.
/// </summary>
public sealed class CliRound33ReviewTests : IDisposable
{
    /// <summary>How long a stopped runner gets to exit: a hang takes the whole wait, a prompt exit a second.</summary>
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>A job that records that it started, then runs until the test writes the release file.</summary>
    private string Held => $"touch {_scratch.PathOf("started")}; until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done; echo held";

    /// <summary>The summary line's counts and its stop clause, without the timings: "N jobs: S succeeded, F failed; stopped early, ...".</summary>
    private static string Summary(RunningCli run)
    {
        var line = Assert.Single(run.Errors.Split('\n'), l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^actorqueue: \d+ jobs? in "));
        var match = System.Text.RegularExpressions.Regex.Match(line, @"^actorqueue: (\d+ jobs?) in .*?: (\d+ succeeded, \d+ failed), .*?; (stopped early, .*)$");
        return match.Success ? $"{match.Groups[1].Value}: {match.Groups[2].Value}; {match.Groups[3].Value}" : line;
    }

    /// <summary>
    /// Waits until the runner has created its --results directory: that comes after its signal handlers are in place
    /// and just before it opens its input, so a signal from now on is the runner's to handle.
    /// </summary>
    private Task ResultsCreatedAsync(RunningCli run) =>
        Poll.UntilAsync(() => Directory.Exists(_scratch.PathOf("out")), ExitWithin, () => $"actorqueue {run.Args} created --results out:\n{run.Errors}", CliScratch.Tick);

    /// <summary>
    /// A job file that is a FIFO no one writes: opening it waits for a writer. SIGTERM (and Ctrl-C twice) was said and
    /// ignored: the open went on waiting, and the runner with it, for ever.
    /// Failed before: the runner had not exited after 60 s (stderr said "terminated (SIGTERM)").
    /// </summary>
    [Fact]
    public async Task Sigterm_while_the_job_fifo_waits_for_a_writer_ends_the_run_at_once_with_130()
    {
        var fifo = _scratch.PathOf("jobs.fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        using var run = new RunningCli(_scratch.Dir, "run", "--results", "out", fifo);
        await ResultsCreatedAsync(run);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await run.WaitForErrorsAsync("terminated (SIGTERM)");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains("actorqueue: interrupted while opening or reading the input; no job started", run.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>:::: -</c> beside another source is read in full before the first job starts; stdin that is never closed (a
    /// terminal, a pipe whose writer waits) kept the runner reading through SIGTERM and both Ctrl-Cs.
    /// Failed before: the runner had not exited after 60 s.
    /// </summary>
    [Fact]
    public async Task Sigterm_while_stdin_arguments_are_read_in_full_ends_the_run_at_once_with_130()
    {
        using var run = new RunningCli(_scratch.Dir, "run", "--results", "out", "echo {1} {2}", "::::", "-", ":::", "a");
        await run.Input.WriteLineAsync("x"); // an argument, and stdin stays open
        await run.Input.FlushAsync();
        await ResultsCreatedAsync(run);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await run.WaitForErrorsAsync("terminated (SIGTERM)");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains("actorqueue: interrupted while opening or reading the input; no job started", run.Errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_scratch.PathOf("out"))); // no job ran: the directory it made went again (round 52)
    }

    /// <summary>
    /// With -j 1 and --max-queued 1, job 1 runs, job 2 waits in the queue and job 3, read, waits for room. SIGTERM
    /// withdraws job 3's put: it was read and never starts (--resume runs it), so the summary counts it among the jobs
    /// not started; job 4 was never read.
    /// Failed before: the summary said "1 queued job(s) not started" (job 3 was in no count).
    /// </summary>
    [Fact]
    public async Task A_job_read_whose_put_the_stop_withdrew_counts_as_not_started()
    {
        var jobs = _scratch.Write("jobs.txt", Held, "echo two", "echo three", "echo four");
        using var run = new RunningCli(_scratch.Dir, "run", jobs, "-j", "1", "--max-queued", "1", "--joblog", "log.tsv");
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), ExitWithin, "job 1 started", CliScratch.Tick);
        await run.WaitForErrorsAsync("0/4 done, 1 running, 1 waiting"); // job 2 is queued, so job 3 has been read

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await run.WaitForErrorsAsync("terminated (SIGTERM)");
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Equal("1 job: 1 succeeded, 0 failed; stopped early, 2 queued job(s) not started (--resume runs them)", Summary(run));
        Assert.Equal([1L], _scratch.ReadJobLog().Select(l => l.Seq));
    }

    /// <summary>
    /// With --state the jobs a stop left unstarted run when the same command runs again; --resume beside --state is a
    /// usage error, so the summary must not send the user there.
    /// Failed before: the summary said "(--resume runs them)".
    /// </summary>
    [Fact]
    public async Task With_state_the_summary_says_a_restart_runs_the_unstarted_jobs_not_resume()
    {
        var jobs = _scratch.Write("jobs.txt", Held, "echo two");
        using var run = new RunningCli(_scratch.Dir, "run", jobs, "-j", "1", "--state", "run.db", "--joblog", "log.tsv");
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), ExitWithin, "job 1 started", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await run.WaitForErrorsAsync("terminated (SIGTERM)");
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Equal("1 job: 1 succeeded, 0 failed; stopped early, 1 queued job(s) not started (the same command with --state runs them)", Summary(run));
    }
    /// <summary>
    /// A reader that stopped reading (<c>actorqueue run ... | sleep 1000</c>) holds the job's output write once the pipe
    /// is full. SIGQUIT (as a second Ctrl-C) kills the running jobs and must end the run: the held write is abandoned,
    /// the job counts as failed and stays out of the joblog (so --resume runs it), and the run exits 130.
    /// Failed before: the runner had not exited 60 s after SIGQUIT (nor after SIGINT twice or SIGTERM).
    /// </summary>
    [Fact]
    public async Task Sigquit_ends_a_run_whose_stdout_reader_stopped_reading()
    {
        var start = CliProcess.StartInfo(_scratch.Dir, "run", "-j", "1", "--joblog", "log.tsv", "head -c {} /dev/zero", ":::", "1000000");
        using var run = System.Diagnostics.Process.Start(start)!;
        run.StandardInput.Close();
        var errors = new System.Text.StringBuilder();
        run.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.Append(e.Data).Append('\n');
            }
        };
        run.BeginErrorReadLine();
        string Errors()
        {
            lock (errors)
            {
                return errors.ToString();
            }
        }

        try
        {
            // The first byte shows that the job ended and its report is writing; the rest (far more than a pipe holds)
            // waits for a reader that reads no more.
            var first = new byte[1];
            Assert.Equal(1, await run.StandardOutput.BaseStream.ReadAsync(first).AsTask().WaitAsync(ExitWithin));

            await CliProcess.SignalAsync(run.Id, "QUIT");

            using var exited = new CancellationTokenSource(ExitWithin);
            await run.WaitForExitAsync(exited.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            Assert.True(run.HasExited, $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIGQUIT:\n{Errors()}");
            run.WaitForExit(); // stderr read to its end
            Assert.Equal(130, run.ExitCode);
            Assert.Contains("actorqueue: job 1: its output could not be written", Errors(), StringComparison.Ordinal);
            Assert.Empty(_scratch.ReadJobLog());
        }
        finally
        {
            if (!run.HasExited)
            {
                run.Kill(entireProcessTree: true);
            }
        }
    }
    /// <summary>
    /// A flag given a value (<c>--quiet=false</c>, <c>-k=1</c>) is a usage error, as in GNU parallel: the parser split
    /// the value off into the command, so <c>--quiet=false echo hi ::: x</c> ran <c>false echo hi x</c> (and
    /// <c>--tag=yes</c> ran <c>yes</c>, for ever).
    /// Failed before: exit 1 and "job 1 failed: exited with 1: false echo hi x" (for -k=1: "exited with 127: 1 echo hi x").
    /// </summary>
    [Theory]
    [InlineData("--quiet=false")]
    [InlineData("-k=1")]
    public async Task A_flag_given_a_value_is_a_usage_error_not_a_word_of_the_command(string flag)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", flag, "echo", "hi", ":::", "x");

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {flag[..flag.IndexOf('=', StringComparison.Ordinal)]} takes no value, got '{flag}'; see 'actorqueue --help'\n", result.Errors);
        Assert.Empty(result.Output);
    }
    /// <summary>
    /// A JSONL tag that no <c>--limit TAG=N</c> can name (empty, or with '=') is a bad line, said with its line number;
    /// the hint to add a limit for it could not be followed (<c>--limit a=b=1</c> is a usage error).
    /// Failed before: "job 1: unknown tag 'a=b'; add --limit a=b=N".
    /// </summary>
    [Fact]
    public async Task A_jsonl_tag_no_limit_can_name_is_a_bad_line()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "{\"cmd\": \"echo a\", \"tags\": [\"a=b\"]}\n", "run", "-q", "--jsonl", "--limit", "a=1", "-");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("actorqueue: line 1: \"tags\" must be names without '=' (as --limit TAG=N gives them), got \"a=b\"; the job is counted as failed\n", result.Errors);
        Assert.Empty(result.Output);
    }
}
