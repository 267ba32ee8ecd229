namespace ActorQueue.Cli.Jobs;

/// <summary>The ways an attempt of a job can end; every attempt ends in exactly one.</summary>
internal enum AttemptEnd
{
    /// <summary>The command ran and exited by itself (with any exit code).</summary>
    Exited,

    /// <summary>The attempt hit its timeout and the job's process group was killed.</summary>
    TimedOut,

    /// <summary>The command could not be started or its result not delivered (exec failed, a node could not run it, ...).</summary>
    CouldNotRun,

    /// <summary>The runner's own interruption (a second Ctrl-C) killed or abandoned it: not finished, so never logged.</summary>
    Interrupted,
}

/// <summary>How one attempt of a job ended, with its captured output (disposing it frees any spooled output).</summary>
/// <param name="End">How it ended.</param>
/// <param name="ExitCode">The exit code; -1 when the job did not exit by itself.</param>
/// <param name="Signal">9 when the job's process group was killed (timeout or a second Ctrl-C), else 0.</param>
/// <param name="Output">What the job wrote to stdout.</param>
/// <param name="Errors">What the job wrote to stderr.</param>
/// <param name="Problem">What went wrong, as a clause like "could not start (Argument list too long)" (<see cref="AttemptEnd.CouldNotRun"/> only).</param>
/// <param name="Host">The cluster node that ran it (<c>host:port</c>); <c>null</c> when it ran here.</param>
internal sealed record AttemptResult(AttemptEnd End, int ExitCode, int Signal, CapturedOutput Output, CapturedOutput Errors, string? Problem = null,
                                     string? Host = null) : IDisposable
{
    public bool Succeeded => End == AttemptEnd.Exited && ExitCode == 0;

    public static AttemptResult Exited(int exitCode, CapturedOutput output, CapturedOutput errors, string? host = null) =>
        new(AttemptEnd.Exited, exitCode, 0, output, errors, Host: host);

    public static AttemptResult TimedOut(CapturedOutput output, CapturedOutput errors, string? host = null) =>
        new(AttemptEnd.TimedOut, -1, 9, output, errors, Host: host);

    public static AttemptResult Interrupted(CapturedOutput? output = null, CapturedOutput? errors = null) =>
        new(AttemptEnd.Interrupted, -1, 9, output ?? CapturedOutput.Of([]), errors ?? CapturedOutput.Of([]));

    public static AttemptResult CouldNotRun(string problem, string? host = null, CapturedOutput? output = null, CapturedOutput? errors = null) =>
        new(AttemptEnd.CouldNotRun, -1, 0, output ?? CapturedOutput.Of([]), errors ?? CapturedOutput.Of([]), problem, host);

    public void Dispose()
    {
        Output.Dispose();
        Errors.Dispose();
    }
}
