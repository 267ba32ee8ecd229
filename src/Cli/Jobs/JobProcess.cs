using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ActorQueue.Cli.Security;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Runs a job's command with <c>/bin/sh -c</c> in a session (and so a process group) of its own, through util-linux's
/// <c>setsid</c>: a terminal's Ctrl-C goes to the foreground process group, so it reaches the runner and not the jobs,
/// and the runner alone decides what happens to them. A timeout or a second Ctrl-C kills the job's whole process group
/// (and its process tree) and ends the attempt then, whatever its descendants still hold open.
/// </summary>
internal static class JobProcess
{
    /// <summary>How long killed jobs' pipes get to deliver their last bytes before the attempt gives up on them.</summary>
    private static readonly TimeSpan DrainAfterKill = TimeSpan.FromMilliseconds(500);

    /// <summary><c>setsid</c> (util-linux) if installed; without it jobs share the runner's process group.</summary>
    public static readonly string? Setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    public static async Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill)
    {
        if (kill.IsCancellationRequested)
        {
            return AttemptResult.Interrupted();
        }

        Process process;
        try
        {
            process = Process.Start(StartInfo(job)) ?? throw new InvalidOperationException("/bin/sh could not be started");
        }
        catch (Win32Exception ex)
        {
            return AttemptResult.CouldNotRun($"could not start ({Marshal.GetPInvokeErrorMessage(ex.NativeErrorCode)})");
        }

        using (process)
        {
            process.StandardInput.Close();
            var output = new CapturedOutput();
            var errors = new CapturedOutput();
            using var abandon = new CancellationTokenSource();
            Task? finished = null;
            Exception? captureFailure = null;

            // The kill happens inside Cancel(), not in a continuation, so it is done before a stopping node or runner exits.
            var stopped = new TaskCompletionSource<AttemptEnd>(TaskCreationOptions.RunContinuationsAsynchronously);
            void Stop(AttemptEnd why)
            {
                if (finished?.IsCompleted != true && stopped.TrySetResult(why))
                {
                    KillGroupAndTree(process);
                }
            }

            // Output that cannot be kept (no room in TMPDIR) ends the attempt: a job whose pipe nobody reads would block.
            async Task CaptureAsync(CapturedOutput into, Stream from)
            {
                try
                {
                    await into.ReadFromAsync(from, abandon.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (abandon.IsCancellationRequested)
                {
                    // Abandoned after a kill: what arrived is kept.
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Interlocked.CompareExchange(ref captureFailure, ex, null);
                    Stop(AttemptEnd.CouldNotRun);
                }
            }

            var reading = Task.WhenAll(CaptureAsync(output, process.StandardOutput.BaseStream), CaptureAsync(errors, process.StandardError.BaseStream));
            var exited = process.WaitForExitAsync(CancellationToken.None);
            finished = Task.WhenAll(exited, reading);
            using var deadline = new CancellationTokenSource();
            await using (kill.Register(() => Stop(AttemptEnd.Interrupted)).ConfigureAwait(false))
            await using (deadline.Token.Register(() => Stop(AttemptEnd.TimedOut)).ConfigureAwait(false))
            {
                if (timeout is { } limit)
                {
                    deadline.CancelAfter(limit);
                }

                // Whichever completion WhenAny saw first, a stop that was recorded means the job was killed.
                await Task.WhenAny(finished, stopped.Task).ConfigureAwait(false);
                if (!stopped.Task.IsCompleted)
                {
                    await finished.ConfigureAwait(false);
                    return AttemptResult.Exited(process.ExitCode, output, errors);
                }
            }

            // Killed: its pipes close as its processes die. A descendant that escaped the group can hold one open for
            // ever; the attempt does not wait for it.
            await Task.WhenAny(finished, Task.Delay(DrainAfterKill)).ConfigureAwait(false);
            await abandon.CancelAsync().ConfigureAwait(false);
            await reading.ConfigureAwait(false);
            await exited.ConfigureAwait(false);
            return await stopped.Task.ConfigureAwait(false) switch
            {
                AttemptEnd.TimedOut => AttemptResult.TimedOut(output, errors),
                AttemptEnd.CouldNotRun => AttemptResult.CouldNotRun($"its output could not be kept ({captureFailure!.Message}); the job was killed",
                                                                    output: output, errors: errors),
                _ => AttemptResult.Interrupted(output, errors),
            };
        }
    }

    private static ProcessStartInfo StartInfo(Job job)
    {
        var start = new ProcessStartInfo(Setsid ?? "/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (Setsid is not null)
        {
            // The runner's child is never a process group leader, so setsid execs the shell in place: the job's pid is
            // its session's and process group's id.
            start.ArgumentList.Add("/bin/sh");
        }

        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(job.Command);

        // The runner's key passwords are its own: a job (on a worker node, a command any member may have sent) does not
        // inherit them, or it could print them back to the coordinator. A job that sets one in its own environment keeps it.
        start.Environment.Remove(CertificateFiles.PasswordVariable);
        start.Environment.Remove(CertificateFiles.AuthorityPasswordVariable);
        foreach (var (name, value) in job.Environment)
        {
            start.Environment[name] = value;
        }

        return start;
    }

    private static void KillGroupAndTree(Process process)
    {
        if (Setsid is not null)
        {
            _ = SendSignal(-process.Id, SigKill); // ESRCH when the group is gone already: nothing left to kill
        }

        try
        {
            process.Kill(entireProcessTree: true); // descendants that left the group but are still the shell's
        }
        catch (Exception ex) when (ex is InvalidOperationException or Win32Exception)
        {
            // It exited meanwhile.
        }
    }

    private const int SigKill = 9;

    // DllImport rather than LibraryImport: two ints need no marshalling, and LibraryImport would need unsafe code.
    [DllImport("libc", EntryPoint = "kill")]
    private static extern int SendSignal(int pid, int signal);
}
