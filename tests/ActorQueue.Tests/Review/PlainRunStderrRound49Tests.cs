using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 49: <c>actorqueue run</c> without <c>--cluster</c> whose stderr is a pipe that its reader holds but reads
/// nothing from, once that pipe is full. Round 48 queued a coordinator's and a node's stderr behind one writer; a plain
/// run still wrote the signal's line, Serilog's console and <c>--log</c>'s reports to <c>Console.Error</c> on the
/// writing thread, under the console's lock. A stop signal must end the run with 130 once its running job has, as
/// <c>run --help</c> says, however stderr's reader behaves.
/// </summary>
public sealed class PlainRunStderrRound49Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// <c>--log /dev/full</c> loses every event, so the run reports the loss at once and counts it at its end; the job
    /// runs until the test releases it. With the job running, stderr's pipe is filled, then SIGTERM, then the release.
    /// Failed before: "actorqueue run did not exit 60 s after SIGTERM though nobody reads its full stderr": the signal's
    /// line blocked in write(2) holding the console's lock, and the count of lost events, said at the exit on the main
    /// thread, waited for that lock for ever. Mutant: <c>LogSinkFailure.Say</c> writing to the console's own stderr
    /// again (<c>Console.OpenStandardError()</c>), not the queue, fails it the same way.
    /// </summary>
    [Fact]
    public async Task Sigterm_ends_a_plain_run_whose_full_stderr_nobody_reads_with_a_failing_log()
    {
        using var run = Start(PipeEnd.Held);
        await WaitStartedAsync(run);
        Assert.True(FullPipe.Fill($"/proc/{run.Pid}/fd/2") > 0, "the run's stderr pipe took none of the filler");

        await CliProcess.SignalAsync(run.Pid, "TERM");
        _scratch.Write("release");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue run did not exit {ExitWithin.TotalSeconds} s after SIGTERM though nobody reads its full stderr");
        Assert.Equal(130, run.ExitCode);
    }

    /// <summary>
    /// As above with a slow but live reader (4 KiB per 100 ms): it gets every line of the run, in the order they were
    /// written: the log's loss, the signal's line, the summary, the count of lost events. Passed before (each line
    /// blocked its thread until the reader took it): a guard that the one queue keeps the lines and their order.
    /// Mutant: the count said on the console's own stderr, not through the queue: fails it whenever the count passes
    /// the summary still queued (the order assertion).
    /// </summary>
    [Fact]
    public async Task A_slow_but_live_reader_gets_a_plain_runs_lines_in_order_after_sigterm()
    {
        using var run = Start(PipeEnd.Paced);
        await WaitStartedAsync(run);
        await Poll.UntilAsync(() => run.Errors.Contains("actorqueue: --log: cannot write", StringComparison.Ordinal), ExitWithin,
            () => $"the run said its log lost events; it said:\n{run.Errors}", CliScratch.Tick);
        Assert.True(FullPipe.Fill($"/proc/{run.Pid}/fd/2") > 0, "the run's stderr pipe took none of the filler");

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await Poll.UntilAsync(() => run.Errors.Contains("actorqueue: terminated (SIGTERM)", StringComparison.Ordinal) || run.HasExited, ExitWithin,
            () => $"the run said it was terminated; it said:\n{Cleaned(run.Errors)}", CliScratch.Tick);
        _scratch.Write("release");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue run did not exit {ExitWithin.TotalSeconds} s after SIGTERM");
        Assert.Equal(130, run.ExitCode);
        var errors = Cleaned(run.Errors);
        string[] lines =
        [
            "actorqueue: --log: cannot write '/dev/full', some log events are lost (the run goes on)",
            "actorqueue: terminated (SIGTERM): no new jobs start",
            "actorqueue: 1 job in ",
            "log event(s) were not written to --log '/dev/full'",
        ];
        var at = lines.Select(line => errors.IndexOf(line, StringComparison.Ordinal)).ToArray();
        Assert.True(at.All(i => i >= 0) && at.Zip(at.Skip(1)).All(pair => pair.Item1 < pair.Item2),
            $"the lines, in order: {string.Join(" | ", lines)}; stderr was:\n{errors}");
    }

    /// <summary>A plain run of one job that runs until the test writes the file <c>release</c>, logging to /dev/full.</summary>
    private PipedCli Start(PipeEnd stderr)
    {
        var jobs = _scratch.Write("jobs.txt",
            $"touch {_scratch.PathOf("started")}; until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done");
        return new PipedCli(_scratch.Dir, PipeEnd.Read, stderr, "run", jobs, "-j", "1", "--log", "/dev/full");
    }

    private async Task WaitStartedAsync(PipedCli run)
    {
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")) || run.HasExited, ExitWithin,
            () => "the job started", CliScratch.Tick);
        Assert.False(run.HasExited, "the run exited before its SIGTERM");
    }

    /// <summary>stderr without the filler's dots.</summary>
    private static string Cleaned(string errors) => errors.Replace("....", "", StringComparison.Ordinal).TrimStart('.');
}
