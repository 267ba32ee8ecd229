using System.Diagnostics;
using ActorQueue.Cli.Commands;

namespace ActorQueue.Cli.Jobs;

/// <summary>A run's counts: each is written with <see cref="Interlocked"/> by the job that changes it and read by the progress line and the summary.</summary>
internal sealed class RunCounts
{
    public int Succeeded;
    public int Failed;
    public int Killed;
    public int Retried;
    public int Running;
    public int Skipped;
    public int NotStarted;

    /// <summary>
    /// Jobs a worker holds that have not started: waiting for their --delay turn, a --limit slot or a -j slot. The
    /// queue no longer counts them, so the progress line adds them to its waiting jobs.
    /// </summary>
    public int Waiting;

    /// <summary>A sample of finished jobs' durations, for the percentiles and the average.</summary>
    public DurationSample Durations { get; } = new();
}

/// <summary>
/// The progress line on stderr (redrawn on a terminal, a line every 2 s otherwise) and the summary at the end. With
/// <c>--eta</c> the line reads as GNU parallel's (<c>ETA: 12s Left: 30 AVG: 0.41s</c>) and its last state stays.
/// </summary>
internal sealed class RunProgress(RunOptions options, RunConsole console, RunCounts counts, Task<long?> total, Stopwatch clock)
{
    /// <summary>Shows the line until <paramref name="cancellationToken"/> fires; <paramref name="queued"/> says how many jobs no worker holds yet.</summary>
    public async Task ShowAsync(Func<long> queued, CancellationToken cancellationToken)
    {
        var terminal = !Console.IsErrorRedirected;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(terminal ? 250 : 2000));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var line = options.Eta ? EtaLine() : $"actorqueue: {Line(queued() + Volatile.Read(ref counts.Waiting))}";
                await console.TextAsync(terminal ? $"\r\u001b[2K{line}" : line + "\n");
            }
        }
        catch (OperationCanceledException)
        {
        }

        if (options.Eta)
        {
            await console.TextAsync((terminal ? "\r\u001b[2K" : "") + EtaLine() + "\n");
        }
        else if (terminal)
        {
            await console.TextAsync("\r\u001b[2K");
        }
    }

    private string Line(long waiting)
    {
        var done = counts.Succeeded + counts.Failed;
        var rate = done / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
        var known = total.IsCompletedSuccessfully ? total.Result : null;
        var progress = known is { } all ? $"{done + counts.Skipped}/{all}" : $"{done}";
        var eta = known is { } jobs && rate > 0 ? $", ETA {Math.Max(0, jobs - done - counts.Skipped) / rate:0}s" : "";
        return $"{progress} done, {Volatile.Read(ref counts.Running)} running, {waiting} waiting, {counts.Failed} failed, {rate:0.0} jobs/s{eta}";
    }

    /// <summary>GNU parallel's <c>--eta</c> line: time left, jobs left (unknown for stdin: "?") and the average job time.</summary>
    private string EtaLine()
    {
        var done = counts.Succeeded + counts.Failed + counts.Skipped;
        var known = total.IsCompletedSuccessfully ? total.Result : null;
        var rate = (counts.Succeeded + counts.Failed) / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
        var left = known is { } all ? Math.Max(0, all - done) : (long?)null;
        var eta = left is { } l ? (rate > 0 ? $"{l / rate:0}s" : l == 0 ? "0s" : "?") : "?";
        return $"actorqueue: ETA: {eta} Left: {left?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} AVG: {counts.Durations.Average():0.00}s";
    }

    public async Task PrintSummaryAsync(int notStarted, bool stoppedEarly)
    {
        if (options.Quiet)
        {
            return;
        }

        var elapsed = clock.Elapsed;
        var done = counts.Succeeded + counts.Failed;
        var line = $"actorqueue: {done} {(done == 1 ? "job" : "jobs")} in {elapsed.TotalSeconds:0.00}s ({done / Math.Max(elapsed.TotalSeconds, 0.001):0.0} jobs/s): " +
                   $"{counts.Succeeded} succeeded, {counts.Failed} failed, {counts.Retried} {(counts.Retried == 1 ? "retry" : "retries")}; job duration p50 {counts.Durations.Percentile(0.5):0.000}s, p95 {counts.Durations.Percentile(0.95):0.000}s";
        if (counts.Skipped > 0)
        {
            // With --state the state file, not the joblog, says which jobs finished (a run may have no joblog at all).
            line += options.State is null ? $"; {counts.Skipped} skipped (already in the joblog)" : $"; {counts.Skipped} skipped (finished, as --state records)";
        }

        if (stoppedEarly)
        {
            line += $"; stopped early, {notStarted} queued job(s) not started"
                    + (options.RerunsUnfinished is { } rerun ? $" ({rerun} runs them)" : "");
        }

        if (counts.Killed > 0)
        {
            line += $"; {counts.Killed} killed";
        }

        await console.LineAsync(line);
    }
}
