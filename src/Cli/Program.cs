using System.Runtime.InteropServices;
using ActorQueue.Cli.Commands;
using Serilog;

using var interrupts = new Interrupts();
// One writer of fd 2 in the process: every line to stderr (Console.Error, Serilog's console, the signals' lines, stray
// stdout writes, a run's output) is queued and written in order by one pump, so no thread that writes a line ever
// blocks on stderr's reader; disposed last (after --log's last flush and count), given up as at the stop.
await using var stderr = QueuedStderr.Install(interrupts);
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
}

// Jobs' output owns stdout, as raw bytes. Anything else that writes to Console.Out (Akka's fallback console logger,
// active while an actor system starts and stops) goes to stderr's queue instead, as log lines, so `actorqueue run ... |
// next-tool` sees only job output. On a pipe or terminal, a file stream on fd 1 reports a closed reader (the console's stream drops the
// bytes silently); on a regular file it would write at its own offset over what stderr wrote, so there write(2) at the
// shared offset is the right one: DescriptorOutput's, not the console's stream, which holds the lock that a stderr
// write blocked on a reader that reads nothing holds too.
static Stream JobOutput()
{
    Console.SetOut(QueuedStderr.Installed?.Log ?? Console.Error);
    FileStream fd1;
    try
    {
        fd1 = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
    }
    catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
    {
        return Console.OpenStandardOutput(); // fd 1 closed or unusable (or Windows, where 1 is no handle): the console's stream copes
    }

    if (!fd1.CanSeek)
    {
        return fd1;
    }

    fd1.Dispose();
    return new ActorQueue.Cli.Jobs.DescriptorOutput(1);
}
