using System.Diagnostics;

namespace ActorQueue.Cli.Jobs;

/// <summary>How one attempt of a job ended.</summary>
/// <param name="ExitCode">The exit code (-1 when the job was killed).</param>
/// <param name="Signal">9 when the job's process tree was killed (timeout or a second Ctrl-C), else 0.</param>
/// <param name="TimedOut">Whether the attempt hit its timeout.</param>
/// <param name="Output">Everything the job wrote to stdout.</param>
/// <param name="Errors">Everything the job wrote to stderr.</param>
/// <param name="Host">The cluster node that ran it (<c>host:port</c>); <c>null</c> when it ran here.</param>
internal sealed record AttemptResult(int ExitCode, int Signal, bool TimedOut, string Output, string Errors, string? Host = null)
{
    public bool Succeeded => ExitCode == 0 && Signal == 0;
}

/// <summary>Runs a job's command with <c>/bin/sh -c</c>, capturing its output whole; a timeout kills the whole process tree.</summary>
internal static class JobProcess
{
    public static async Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(job.Command);
        foreach (var (name, value) in job.Environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("/bin/sh could not be started");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = timeout is { } limit ? new CancellationTokenSource(limit) : new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, kill);
        var killed = false;
        try
        {
            await process.WaitForExitAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            killed = true;
        }

        var timedOut = killed && deadline.IsCancellationRequested;
        return new AttemptResult(killed ? -1 : process.ExitCode, killed ? 9 : 0, timedOut, await output, await errors);
    }
}
