using System.Diagnostics;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 148's review of what <c>actorqueue run</c> tells the user about the jobs a stop or a failure left unfinished:
/// with <c>--state</c> a restart of the same command runs them (<c>--resume</c> beside <c>--state</c> is a usage error),
/// with <c>--joblog</c> <c>--resume</c> does, and with neither nothing records them, so no hint at all.
/// </summary>
public sealed class CliStateWordsReviewTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    /// <summary>The one stderr line that starts with <paramref name="prefix"/>.</summary>
    private static string LineStarting(string errors, string prefix) =>
        Assert.Single(errors.Split('\n'), line => line.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>How long a runner gets to exit (and a job to start): a hang takes the whole wait, a prompt exit a second.</summary>
    private static TimeSpan ExitWithin => TimeSpan.FromSeconds(60);

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// SIGQUIT kills the running jobs; the line saying so named --resume whatever the run's mode: beside --state (where
    /// --resume is a usage error; the same command with --state runs the killed job again) and with no joblog at all
    /// (nothing to resume).
    /// Failed before: the --state and the bare run both said "killing running jobs (not logged, --resume runs them)".
    /// </summary>
    [Theory]
    [InlineData("--state", "run.db", "quit (SIGQUIT): no new jobs start; killing running jobs (the same command with --state runs them)")]
    [InlineData("--joblog", "log.tsv", "quit (SIGQUIT): no new jobs start; killing running jobs (not logged, --resume runs them)")]
    [InlineData("-j", "1", "quit (SIGQUIT): no new jobs start; killing running jobs")]
    public async Task The_sigquit_line_names_what_runs_the_killed_jobs_in_the_runs_mode(string option, string value, string said)
    {
        // The job marks that it started, then runs until the kill.
        var jobs = _scratch.Write("jobs.txt", $"touch {_scratch.PathOf("started")}; while :; do sleep 0.02; done");
        using var run = new RunningCli(_scratch.Dir, "run", jobs, option, value);
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), ExitWithin, () => $"job 1 started:\n{run.Errors}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "QUIT");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Equal($"actorqueue: {said}", LineStarting(run.Errors, "actorqueue: quit (SIGQUIT)"));
        Assert.Contains("; 1 killed", run.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// Standard output closed: job 1's output cannot be written, so it counts as failed and the run stops. The line
    /// said "is not in the joblog, so --resume runs it again" with --state too, where --resume is a usage error; the same
    /// command with --state runs it (and the jobs the stop left unstarted) again, as the rerun here shows.
    /// Failed before: the line ended "... is not in the joblog, so --resume runs it again".
    /// </summary>
    [Fact]
    public async Task With_state_the_output_write_failure_says_a_restart_runs_the_job_again()
    {
        var jobs = _scratch.Write("jobs.txt", "echo out-1", "echo out-2", "echo out-3");
        var errors = await RunWithStdoutClosedAsync(jobs, "-j", "1", "--state", "run.db");

        var line = LineStarting(errors, "actorqueue: job 1: its output could not be written");
        Assert.EndsWith("; the job is counted as failed and the same command with --state runs it again", line, StringComparison.Ordinal);
        Assert.DoesNotContain("--resume", errors, StringComparison.Ordinal);

        var rerun = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "1", "--state", "run.db");

        Assert.Equal(0, rerun.ExitCode);
        Assert.Equal("out-1\nout-2\nout-3\n", rerun.Output);
    }

    /// <summary>
    /// The same failure with neither a joblog nor --state: nothing records which jobs finished, so there is nothing to
    /// resume and no joblog for the job to be missing from.
    /// Failed before: the line ended "... is not in the joblog, so --resume runs it again".
    /// </summary>
    [Fact]
    public async Task Without_joblog_or_state_the_output_write_failure_names_neither()
    {
        var jobs = _scratch.Write("jobs.txt", "echo out-1", "echo out-2");
        var errors = await RunWithStdoutClosedAsync(jobs, "-j", "1");

        var line = LineStarting(errors, "actorqueue: job 1: its output could not be written");
        Assert.EndsWith("; the job is counted as failed", line, StringComparison.Ordinal);
        Assert.DoesNotContain("--resume", errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// A run with --state and a joblog that is a FIFO (its records go to whoever reads it): the same command again
    /// continues the joblog, which a FIFO cannot give back, so the restart is refused; the refusal named --resume, which
    /// the user did not give (and which is a usage error beside --state).
    /// Failed before: "--joblog: '...' is not a regular file, so --resume cannot read it back".
    /// </summary>
    [Fact]
    public async Task A_state_restart_refused_for_a_fifo_joblog_does_not_name_resume()
    {
        var fifo = await _scratch.FifoAsync("log.fifo");

        var jobs = _scratch.Write("jobs.txt", "echo one");
        var first = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-q", "--state", "run.db", "--joblog", fifo);
        Assert.True(first.ExitCode == 0, first.Errors); // the records wait in the pipe

        var restart = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-q", "--state", "run.db", "--joblog", fifo);

        Assert.Equal(255, restart.ExitCode);
        Assert.Equal($"actorqueue: --joblog: '{fifo}' is not a regular file, so the jobs it records cannot be read back to go on where the run stopped; see 'actorqueue --help'\n", restart.Errors);
    }

    /// <summary>
    /// --log on a FIFO that no one reads: opening it for writing waits for a reader, before any job starts. SIGTERM (and
    /// Ctrl-C twice) was said and ignored: the open went on waiting, and the runner with it. Now it ends the run as an
    /// interruption while the input is opened does.
    /// Failed before: the runner had not exited 60 s after SIGTERM.
    /// </summary>
    [Fact]
    public async Task Sigterm_while_the_log_fifo_waits_for_a_reader_ends_the_run_at_once_with_130()
    {
        var fifo = await _scratch.FifoAsync("log.fifo");
        // Without the runtime's diagnostics, whose debugger FIFOs wait for a partner too.
        var noDiagnostics = new Dictionary<string, string> { ["DOTNET_EnableDiagnostics"] = "0" };
        using var run = new RunningCli(_scratch.Dir, noDiagnostics, "run", "--results", "out", "--log", fifo, "echo", ":::", "a");
        // A thread of the runner waits in the FIFO's open for the other end (Linux's wait channel names it).
        await Poll.UntilAsync(() => CliProcess.WaitsForFifoPartner(run.Pid), ExitWithin, () => $"the runner waits to open --log:\n{run.Errors}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await run.WaitForErrorsAsync("terminated (SIGTERM)");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains($"actorqueue: interrupted while opening --log '{fifo}'; no job started", run.Errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_scratch.PathOf("out"))); // no job ran: the directory it made went again (round 52)
    }

    /// <summary>
    /// --log on a FIFO that a reader reads to its end (<c>cat</c>): the check that the log can be written opened it and
    /// closed it again, which is the end of the FIFO for the reader; the log's own open then waited for a reader that
    /// had gone, for ever. The open that checks is now held for the run, so the run goes on and ends (and since helper
    /// 150's LogFileSink, the reader gets the events: CliLeftoversReviewTests).
    /// Failed before: the runner had not exited after 60 s.
    /// </summary>
    [Fact]
    public async Task A_log_fifo_read_to_its_end_does_not_hold_the_run()
    {
        var fifo = await _scratch.FifoAsync("log.fifo");
        var start = new ProcessStartInfo("cat") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(fifo);
        using var reader = Process.Start(start)!;
        try
        {
            var read = reader.StandardOutput.ReadToEndAsync();
            using var run = new RunningCli(_scratch.Dir, "run", "-q", "--log", fifo, "echo", ":::", "a");

            Assert.Equal(0, await run.ExitAsync(ExitWithin));
            Assert.Equal("a\n", run.Output);
            Assert.DoesNotContain("--log: cannot write", run.Errors, StringComparison.Ordinal);
            await read.WaitAsync(ExitWithin); // the run's end is the FIFO's end for the reader
        }
        finally
        {
            if (!reader.HasExited)
            {
                reader.Kill();
            }
        }
    }

    /// <summary>Runs <c>actorqueue run</c> with <paramref name="args"/> and its stdout closed (every write fails with EPIPE); returns its stderr.</summary>
    private async Task<string> RunWithStdoutClosedAsync(params string[] args)
    {
        using var run = Process.Start(CliProcess.StartInfo(_scratch.Dir, ["run", .. args]))!;
        try
        {
            run.StandardOutput.Close(); // like `actorqueue run ... | head -0`
            run.StandardInput.Close();
            var errors = await run.StandardError.ReadToEndAsync().WaitAsync(ExitWithin);
            await run.WaitForExitAsync().WaitAsync(ExitWithin);
            Assert.True(run.ExitCode == 255, errors); // stopped by its own failure
            return errors;
        }
        finally
        {
            if (!run.HasExited)
            {
                run.Kill(entireProcessTree: true);
            }
        }
    }
}
