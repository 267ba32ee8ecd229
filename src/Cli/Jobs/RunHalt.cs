using ActorQueue.Cli.Commands;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// A run's two stop switches and who throws them: "no new jobs" (<c>--halt soon</c>, <c>--halt-on-failure</c>, a run
/// failure) and "kill running jobs" (<c>--halt now</c>, or the runner's second Ctrl-C). Every job's final outcome is
/// counted here once, and the <see cref="HaltPolicy"/> decides from the counts.
/// </summary>
internal sealed class RunHalt(RunOptions options, RunConsole console, Interrupts interrupts, Task<long?> total) : IDisposable
{
    /// <summary>Cancelled when no new job may start.</summary>
    private readonly CancellationTokenSource _noNewJobs = new();

    /// <summary>Cancelled when running jobs are to be killed: by --halt now, or with the runner's own kill.</summary>
    private readonly CancellationTokenSource _kill = CancellationTokenSource.CreateLinkedTokenSource(interrupts.Kill);

    /// <summary>1 once a stop was said (<see cref="StopAsync"/>).</summary>
    private int _stopping;

    private int _failed;
    private int _succeeded;

    /// <summary>The exit status --halt chose when it halted the run (-1 until then).</summary>
    private int _haltStatus = -1;

    /// <summary>Cancelled when no new job may start (Ctrl-C has its own token).</summary>
    public CancellationToken NoNewJobs => _noNewJobs.Token;

    /// <summary>Cancelled when running jobs are to be killed.</summary>
    public CancellationToken Kill => _kill.Token;

    /// <summary>Whether no new job may start.</summary>
    public bool Stopped => _noNewJobs.IsCancellationRequested;

    /// <summary>
    /// Counts a job's final outcome and halts the run if that is asked for; <paramref name="status"/> is the job's exit
    /// status as a shell reports it (128 + signal for a killed one). Runs before the job's output shows, so no job
    /// starts once the output that halted the run is on the screen.
    /// </summary>
    public async Task FinishedAsync(bool failed, int status, string what)
    {
        var failedNow = failed ? Interlocked.Increment(ref _failed) : Volatile.Read(ref _failed);
        var succeededNow = failed ? Volatile.Read(ref _succeeded) : Interlocked.Increment(ref _succeeded);
        if (options.HaltOnFailure && failed)
        {
            await StopAsync("--halt-on-failure: no new jobs start; running jobs finish");
            return;
        }

        if (options.Halt is not { } policy || Stopped)
        {
            return;
        }

        var counted = policy.Percent is null ? 0 : await total.ConfigureAwait(false);
        if (counted is null)
        {
            // No total (the file could not be counted): a percentage of nothing known never halts; taken as 0 jobs it
            // would halt on the first job, even one that succeeded.
            return;
        }

        // A file that grew after it was counted (empty then, say) has more jobs than counted: never fewer than finished.
        var jobs = Math.Max(counted.Value, failedNow + succeededNow);

        if (!policy.Halts(failedNow, succeededNow, jobs) || Interlocked.CompareExchange(ref _haltStatus, policy.ExitStatus(status, failedNow, jobs), -1) != -1)
        {
            return;
        }

        var now = policy.When == HaltWhen.Now;
        await StopAsync($"--halt {(now ? "now" : "soon")}: {what}; no new jobs start; running jobs {(now ? "are killed" : "finish")}");
        if (now)
        {
            await _kill.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops new jobs and says <paramref name="message"/> (<c>null</c>: nothing) once, whoever stops first, even two at the same moment;
    /// <c>false</c> when the run had already been stopped, and nothing was said.
    /// </summary>
    public async Task<bool> StopAsync(string? message)
    {
        if (Interlocked.Exchange(ref _stopping, 1) != 0)
        {
            return false;
        }

        await _noNewJobs.CancelAsync().ConfigureAwait(false);
        if (message is not null)
        {
            await console.LineAsync($"actorqueue: {message}").ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>The exit status --halt gives (parallel's rules), or <c>null</c> when the usual count of failures applies.</summary>
    public int? ExitStatus(int killed)
    {
        if (options.Halt is not { } policy)
        {
            return null;
        }

        return _haltStatus >= 0 ? _haltStatus : policy.ExitStatusWithoutHalt(_failed, _failed + _succeeded + killed);
    }

    public void Dispose()
    {
        _noNewJobs.Dispose();
        _kill.Dispose();
    }
}
