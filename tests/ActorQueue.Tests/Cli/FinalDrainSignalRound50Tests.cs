namespace ActorQueue.Tests.Cli;

/// <summary>
/// Round 50: a stop signal that comes once the command has ended, while the process's stderr queue still writes its
/// tail to a slow reader at the exit (its final drain). The command's outcome is decided by then: the signal neither
/// changes the exit status nor loses the tail.
/// </summary>
public sealed class FinalDrainSignalRound50Tests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The tail is a usage error's line (exit 255), 200 KB long (it names a 100 KB <c>--results</c> path twice), read
    /// by a live reader at 4 KiB per 100 ms, so it is written for about five seconds. Once half of it has been read the
    /// signal comes: the process exits 255 and its reader gets the whole line, and no line of the signal's (the outcome
    /// was decided before any job). Since h226 the usage line is written by the command, which waits for its reader,
    /// not by the exit's drain: merged with it, this test failed "Assert.EndsWith() Failure" for each signal (its line,
    /// "... running jobs finish ...", came after the usage line) until <c>Usage.FailAsync</c> marked the outcome
    /// decided (<c>Interrupts.Decided</c>: a signal still stops, and says nothing).
    /// Failed before: "Assert.Equal() Failure: Values differ Expected: 255 Actual: 143" (SIGTERM; 130 for SIGINT, 129
    /// for SIGHUP): the signals' handlers were removed before the drain, so the signal's default action killed the
    /// process and the rest of the line was lost. Mutant: the handlers kept through the drain but the runner's exit
    /// not marked before it (the signal then says its line after the tail) fails "Assert.EndsWith() Failure: String end
    /// does not match" (the line: "... running jobs finish (Ctrl-C kills them)").
    /// </summary>
    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    [InlineData("HUP")]
    public async Task A_signal_during_the_exits_drain_of_stderr_keeps_the_exit_status_and_the_tail(string signal)
    {
        var results = string.Concat(Enumerable.Repeat("d/", 50_000));
        using var run = new PipedCli(_scratch.Dir, PipeEnd.Read, PipeEnd.Paced, "run", "--results", results, ":::", "a");

        await Poll.UntilAsync(() => run.Errors.Length > 100_000 || run.HasExited, Bound,
            () => $"the reader read half the usage line; it read {run.Errors.Length} bytes", CliScratch.Tick);
        Assert.False(run.HasExited, "the drain was over before the signal: the reader read faster than it does");
        await CliProcess.SignalAsync(run.Pid, signal);

        Assert.True(await run.ExitsWithinAsync(Bound), $"actorqueue did not exit {Bound.TotalSeconds} s after SIG{signal}");
        Assert.Equal(255, run.ExitCode);
        Assert.StartsWith($"actorqueue: --results: cannot create '{results}': ", run.Errors, StringComparison.Ordinal);
        Assert.EndsWith("see 'actorqueue --help'\n", run.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("no new jobs start", run.Errors, StringComparison.Ordinal);
    }
}
