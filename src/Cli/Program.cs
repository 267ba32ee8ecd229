using System.Runtime.InteropServices;
using ActorQueue.Cli.Commands;
using Serilog;

using var interrupts = new Interrupts();
// One writer of fd 2 in the process: every line to stderr (Console.Error, Serilog's console, the signals' lines, stray
// stdout writes, a run's output) is queued and written in order by one pump, so no thread that writes a line ever
// blocks on stderr's reader; disposed at the end (after --log's last flush and count), given up as at the stop, while
// the signals' handlers below are still registered.
var stderr = QueuedStderr.Install(interrupts);
// A terminal's Ctrl-C reaches only this process (jobs run in sessions of their own); SIGTERM and SIGHUP stop the same
// way as the first Ctrl-C, so running jobs finish and are logged instead of being orphaned.
using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal =>
{
    signal.Cancel = true;
    interrupts.Press();
});
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
{
    signal.Cancel = true;
    interrupts.Stop("terminated (SIGTERM)");
});
using var onHangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, signal =>
{
    signal.Cancel = true;
    interrupts.Stop("hung up (SIGHUP)");
});
// Ctrl-\ (SIGQUIT) would kill the runner and orphan its jobs, unlogged and with no timeout: like a second Ctrl-C it
// kills the jobs' process groups instead and logs none of them (--resume, or with --state a restart, runs them again).
using var onQuit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, signal =>
{
    signal.Cancel = true;
    interrupts.KillAll("quit (SIGQUIT)");
});

try
{
    return await CommandLineSyntax.InvokeAsync(args, interrupts, JobOutput);
}
finally
{
    try
    {
        await Log.CloseAndFlushAsync();
    }
    catch (IOException ex)
    {
        LogSinkFailure.Report("the log file", ex.Message); // --log's last flush, on a full disk
    }

    // The command is over, its exit status decided: a signal while stderr's tail is written to a slow reader is ignored
    // (when the handlers were gone by then, its default action killed the process, with a signal's status, and the
    // rest of the tail was lost), and the tail is written or given up as at the stop, at most half a second a piece
    // its reader takes none of.
    interrupts.Exit();
    await stderr.DisposeAsync();
}

// Jobs' output owns stdout, as raw bytes. Anything else that writes to Console.Out (Akka's fallback console logger,
// active while an actor system starts and stops) goes to stderr's queue instead, as log lines, so `actorqueue run ... |
// next-tool` sees only job output. fd 1 is written with write(2) by DescriptorOutput, whatever it is: on a regular file
// at the offset it shares with stderr (a file stream of its own would write over what stderr wrote), apart from the
// console's lock (which a stderr write blocked on a reader that reads nothing held too); on a pipe or terminal that is
// non-blocking (O_NONBLOCK, set by a parent that shares it) an EAGAIN waits for the reader, as a blocking write would,
// where a file stream took it for a failure of stdout (the job failed, the run stopped at 255, its reader read on); a
// closed reader is an IOException either way (the console's stream drops the bytes silently).
static Stream JobOutput()
{
    Console.SetOut(QueuedStderr.Installed?.Log ?? Console.Error);
    if (OperatingSystem.IsWindows())
    {
        return Console.OpenStandardOutput(); // no write(2) there
    }

    try
    {
        // Only a check that fd 1 is open and writable; DescriptorOutput writes it.
        using var fd1 = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
    }
    catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
    {
        return Console.OpenStandardOutput(); // fd 1 closed or unusable: the console's stream copes
    }

    return new ActorQueue.Cli.Jobs.DescriptorOutput(1);
}
