using Serilog;

namespace ActorQueue.Cli.Jobs;

/// <summary>A finished job's report: the halt rule, then (in input order with -k) its output, joblog record and state record.</summary>
internal sealed partial class JobRun
{
    /// <summary>Reports a finished job (taking over <paramref name="result"/>): the halt rule first, then, in input order with -k, its output and record.</summary>
    private async Task ReportAsync(Job job, string readCommand, AttemptResult result, DateTimeOffset started, TimeSpan runtime, int attempts)
    {
        try
        {
            // Before anything is printed or logged, so no job starts once the output that halts the run shows.
            await _stop.FinishedAsync(!result.Succeeded, StatusOf(result), $"job {job.Id} {(result.Succeeded ? "succeeded" : "failed")}");
            _counts.Durations.Add(runtime.TotalSeconds);
        }
        catch
        {
            result.Dispose();
            throw;
        }

        if (_order is null)
        {
            await WriteReportAsync(job, readCommand, result, started, runtime, attempts);
        }
        else
        {
            await _order.ReportAsync(job.Seq, () => WriteReportAsync(job, readCommand, result, started, runtime, attempts));
        }
    }

    /// <summary>
    /// The end of a line about a job a write failure left unrecorded: what runs it again in this run's mode (with a
    /// joblog, after <paramref name="joblogReason"/>), or nothing when nothing records which jobs finished.
    /// </summary>
    private string Rerun(string joblogReason = "") =>
        options.RerunsUnfinished is { } rerun ? $" and {(options.State is null ? joblogReason : "")}{rerun} runs it again" : "";

    /// <summary>
    /// A job's exit status as GNU parallel's <c>--halt</c> gives it: 255 for a job its timeout killed (its exit value is
    /// -1, as in the joblog), otherwise as a shell reports it: 128 + the signal for a killed job.
    /// </summary>
    private static int StatusOf(AttemptResult result) =>
        result.End == AttemptEnd.TimedOut ? 255
        : result.Signal != 0 ? 128 + result.Signal : result.ExitCode is >= 0 and <= 255 ? result.ExitCode : 1;

    /// <summary>
    /// For an exit status of 128 + a signal's number (129-159): that a kill by that signal gives it too. .NET's Process
    /// reports a child that a signal ended as 128 + the signal, as a shell does, so a job's own <c>exit 137</c> and a
    /// SIGKILL from elsewhere (the OOM killer, a user) look the same; the joblog records both as Exitval 137, Signal 0,
    /// and only the kills the runner sends itself (a timeout) record their signal.
    /// </summary>
    private static string SignalHint(int exitCode) =>
        exitCode is > 128 and < 160 ? $" (or was killed by signal {exitCode - 128}, which gives the same status)" : "";

    private async Task WriteReportAsync(Job job, string readCommand, AttemptResult result, DateTimeOffset started, TimeSpan runtime, int attempts)
    {
        using (result)
        {
            var tries = attempts > 1 ? $" after {attempts} attempts" : "";
            var why = result.End switch
            {
                AttemptEnd.Exited when result.Succeeded => null,
                AttemptEnd.Exited => $"actorqueue: job {job.Id} failed: exited with {result.ExitCode}{SignalHint(result.ExitCode)}{tries}: {Shorten(job.Command)}",
                AttemptEnd.TimedOut => $"actorqueue: job {job.Id} failed: timed out after {(job.Timeout ?? options.Timeout)!.Value.TotalSeconds:0.###}s (process group killed){tries}: {Shorten(job.Command)}",
                _ => $"actorqueue: job {job.Id} failed: {result.Problem}{tries}: {Shorten(job.Command)}",
            };
            try
            {
                if (_results is null)
                {
                    await console.WriteJobAsync(TagOf(job), result.Output, result.Errors, why);
                }
                else
                {
                    if (await _results.WriteAsync(job, result.Output, result.Errors) is { } collision)
                    {
                        await console.LineAsync(collision);
                    }

                    if (why is not null)
                    {
                        await console.LineAsync(why);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                var where = _results is null ? "its output could not be written" : $"its results could not be written under {options.Results}";
                Interlocked.Increment(ref _counts.Failed);
                await console.LineAsync($"actorqueue: job {job.Id}: {where} ({ex.Message}); the job is counted as failed{Rerun("is not in the joblog, so ")}");
                await StopRunAsync(_results is null ? "stdout cannot be written" : "--results cannot be written");
                return;
            }

            try
            {
                if (jobLog is not null)
                {
                    await jobLog.RecordAsync(job.Seq, result.Host, started, runtime, result.Output.Length + result.Errors.Length, result.ExitCode, result.Signal, job.Command);
                }
            }
            catch (IOException ex)
            {
                Interlocked.Increment(ref _counts.Failed);
                await console.LineAsync($"actorqueue: job {job.Id}: the joblog could not be written ({ex.Message}); the job is counted as failed{Rerun()}");
                await StopRunAsync("the joblog cannot be written");
                return;
            }

            try
            {
                // After the output and the joblog: a kill before this line runs the job again, as --resume would.
                state?.Finished(job.Seq, readCommand, result.Succeeded, result.ExitCode, result.Signal, attempts, result.Succeeded ? null : FailureOf(result));
            }
            catch (RunStateException ex)
            {
                Interlocked.Increment(ref _counts.Failed);
                await console.LineAsync($"actorqueue: job {job.Id}: --state could not record it ({ex.Message}); the job is counted as failed and runs again on a restart");
                await StopRunAsync("--state cannot be written");
                return;
            }

            Log.Information("Job {JobId} (seq {Seq}) {Outcome} with exit {ExitCode} in {RuntimeSeconds:0.000}s after {Attempts} attempt(s), {OutputBytes} output bytes (spooled: {Spooled}): {Command}",
                job.Id, job.Seq, result.Succeeded ? "succeeded" : result.End switch { AttemptEnd.TimedOut => "timed out", AttemptEnd.CouldNotRun => "could not run", _ => "failed" },
                result.ExitCode, runtime.TotalSeconds, attempts, result.Output.Length + result.Errors.Length, result.Output.Spooled || result.Errors.Spooled, job.Command);
            if (result.Succeeded)
            {
                Interlocked.Increment(ref _counts.Succeeded);
            }
            else
            {
                Interlocked.Increment(ref _counts.Failed);
            }
        }
    }

    /// <summary>
    /// What --tag puts before each output line: as in GNU parallel, a job's arguments joined by spaces (from
    /// <c>:::</c> and <c>::::</c>), else its id (its sequence number, or JSONL's <c>id</c>).
    /// </summary>
    private static string TagOf(Job job) => job.Arguments.Count > 0 ? string.Join(' ', job.Arguments) : job.Id;

    /// <summary>Why a finished attempt failed, as <c>dead-letters list</c> shows it.</summary>
    private static string FailureOf(AttemptResult result) => result.End switch
    {
        AttemptEnd.Exited => $"exited with {result.ExitCode}",
        AttemptEnd.TimedOut => "timed out (process group killed)",
        _ => result.Problem ?? "could not run",
    };

    /// <summary>A command as a message shows it: long ones cut, so a 10 MB command does not flood the terminal.</summary>
    private static string Shorten(string command) => command.Length <= 200 ? command : $"{command[..200]}... ({command.Length} characters)";
}