namespace ActorQueue.Cli.Commands;

/// <summary>
/// A <c>--log</c> file that cannot be written (a full disk, a removed mount) never fails the run: the jobs and the joblog
/// matter, the log is a diagnostic. The user is told once on stderr, whether the sink fails while writing or at close,
/// and at the end how many events were not written (<see cref="LogFileSink"/>).
/// </summary>
internal static class LogSinkFailure
{
    private static int _reported;

    /// <summary>Routes Serilog's own failures (a sink that throws while writing) to <see cref="Report"/>.</summary>
    public static void Watch(string path) => Serilog.Debugging.SelfLog.Enable(message => Report(path, message));

    /// <summary>
    /// Tells the user, the first time only, that the log at <paramref name="path"/> lost events and why; that the run goes
    /// on, unless <paramref name="runGoesOn"/> is <c>false</c> (the loss came at its end).
    /// </summary>
    public static void Report(string path, string why, bool runGoesOn = true)
    {
        if (Interlocked.Exchange(ref _reported, 1) != 0)
        {
            return;
        }

        var firstLine = why.Split('\n', 2)[0].Trim();
        Say($"actorqueue: --log: cannot write '{path}', some log events are lost{(runGoesOn ? " (the run goes on)" : "")}: {firstLine}");
    }

    /// <summary>
    /// Says <paramref name="line"/> on stderr, if there is one: <c>Console.Error</c>, which is the process's queue
    /// (<see cref="QueuedStderr.Install"/>), so the line never waits for stderr's reader (the count said at the exit
    /// waited for a full pipe's for ever, and held the exit).
    /// </summary>
    public static void Say(string line)
    {
        try
        {
            Console.Error.WriteLine(line);
        }
        catch (IOException)
        {
            // No stderr either: nothing more to tell anyone.
        }
    }
}
