using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Cli.Commands;
using Serilog;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// One run: the queue, the limiters, the counters and the output. Every job read ends in exactly one count: succeeded,
/// failed (malformed, could not run, exited non-zero, timed out, or its output or joblog record could not be written),
/// killed by the runner's interruption, or not started because the run stopped; the exit status follows from them.
/// </summary>
internal sealed class JobRun(RunOptions options, RunConsole console, JobLog? jobLog, Interrupts interrupts, Task<long?> total, IJobExecutor executor)
{
    /// <summary>More workers than this would only add actors: -j above it still runs at most this many jobs at once.</summary>
    public const int MaxWorkers = 4096;


    /// <summary>--halt, --halt-on-failure and a run failure: no new job starts, and with --halt now running jobs are killed.</summary>
    private readonly RunHalt _stop = new(options, console, interrupts, total);

    /// <summary>-k: reports in input order; <c>null</c> when each job reports as it ends.</summary>
    private readonly OutputOrder? _order = options.KeepOrder ? new OutputOrder() : null;

    /// <summary>--delay between starts, or <c>null</c>.</summary>
    private readonly StartSpacing? _spacing = options.Delay is { } delay ? new StartSpacing(delay) : null;

    /// <summary>--results: output saved to files instead of printed, or <c>null</c>.</summary>
    private readonly ResultsDirectory? _results = options.Results is { } results ? new ResultsDirectory(results) : null;

    /// <summary>Which job slots ({%}, from 1) are taken: a starting job takes the lowest free one.</summary>
    private readonly bool[] _slots = new bool[Math.Min(options.Jobs, MaxWorkers)];

    private readonly Lock _slotGate = new();

    /// <summary>The run's counts, which the progress line and the summary read.</summary>
    private readonly RunCounts _counts = new();

    /// <summary>Set when the run itself went wrong (input unreadable, stdout or joblog unwritable): the exit status is never 0.</summary>
    private volatile bool _runFailed;

    /// <summary>How many jobs are read ahead of the running ones: --max-queued, else twice the jobs that can run, at least 16.</summary>
    public static int ReadAhead(RunOptions options) => options.MaxQueued ?? Math.Max(2 * Math.Min(options.Jobs, MaxWorkers), 16);

    /// <summary>Set by --halt-on-failure, a run failure or the first Ctrl-C: jobs not yet started stay unstarted (and unlogged, so --resume runs them).</summary>
    private bool Stopping => _stop.Stopped || interrupts.StopInput.IsCancellationRequested;

    /// <summary>Runs the jobs <paramref name="read"/> yields (it stops reading when its token is cancelled); returns the exit status.</summary>
    public async Task<int> ExecuteAsync(Func<CancellationToken, IAsyncEnumerable<object>> read)
    {
        using (_stop)
        {
            return await ExecuteJobsAsync(read);
        }
    }

    private async Task<int> ExecuteJobsAsync(Func<CancellationToken, IAsyncEnumerable<object>> read)
    {
        var clock = Stopwatch.StartNew();
        var alreadyFinished = jobLog?.Finished ?? new HashSet<long>();
        await using var jobSlots = new ConcurrencyLimiter(options.Jobs, name: "jobs");
        var tagSlots = options.Limits.ToDictionary(l => l.Key, l => new ConcurrencyLimiter(l.Value, name: $"tag-{l.Key}"));
        try
        {
            // Tagged jobs wait for their tag before they take a -j slot, so extra workers keep untagged jobs moving.
            var workers = (int)Math.Min(options.Jobs + options.Limits.Values.Sum(v => (long)v), MaxWorkers);
            // One job per worker at a time (worker batch 1): jobs are long, and -j N means N jobs run at once, so a job
            // must never wait in a worker's run behind another job while a slot is free.
            await using var queue = new BoundedQueue<object>(ReadAhead(options), Timeout.InfiniteTimeSpan,
                name: "jobs", workerBatch: 1);
            await queue.StartAsync();
            await queue.StartWorkersAsync((item, _) => RunItemAsync(item, jobSlots, tagSlots), workers, OnUnexpectedErrorAsync);

            using var feeding = CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _stop.NoNewJobs);
            using var progressStop = new CancellationTokenSource();
            var reporter = new RunProgress(options, console, _counts, total, clock);
            var progress = options.Quiet && !options.Eta ? Task.CompletedTask : reporter.ShowAsync(() => queue.Size, progressStop.Token);
            var stoppedEarly = false;
            try
            {
                await foreach (var item in read(feeding.Token))
                {
                    if (item is Job job && alreadyFinished.Contains(job.Seq))
                    {
                        _counts.Skipped++;
                        await SkipInOrderAsync(job.Seq);
                        continue;
                    }

                    await queue.PutAsync(item, Timeout.InfiniteTimeSpan, feeding.Token);
                }

                await queue.JoinAsync(feeding.Token);
            }
            catch (OperationCanceledException) when (feeding.IsCancellationRequested)
            {
                stoppedEarly = true;
            }
            catch (IOException ex)
            {
                await StopRunAsync($"reading the input failed ({ex.Message})");
                stoppedEarly = true;
            }

            // Running jobs finish; jobs still queued are taken back, not started and not logged, so --resume runs them.
            await queue.StopAsync(Timeout.InfiniteTimeSpan);
            var unstarted = (await queue.DrainAsync()).Count;
            if (_order is not null)
            {
                await _order.FlushAsync();
            }

            await progressStop.CancelAsync();
            await progress;
            await reporter.PrintSummaryAsync(unstarted + _counts.NotStarted, stoppedEarly);
        }
        finally
        {
            foreach (var limiter in tagSlots.Values)
            {
                await limiter.DisposeAsync();
            }
        }

        var failures = _counts.Failed + _counts.Killed;
        if (!interrupts.StopInput.IsCancellationRequested && !_runFailed && _stop.ExitStatus(_counts.Killed) is { } halted)
        {
            return halted;
        }

        return failures == 0 && !interrupts.StopInput.IsCancellationRequested && !_runFailed ? 0 : Math.Clamp(failures, 1, 101);
    }

    private async Task RunItemAsync(object item, ConcurrencyLimiter jobSlots, Dictionary<string, ConcurrencyLimiter> tagSlots)
    {
        if (item is MalformedJob malformed)
        {
            await JobFailedAsync($"actorqueue: line {malformed.LineNumber}: {malformed.Problem}; the job is counted as failed", malformed.Seq, $"line {malformed.LineNumber} failed");
            return;
        }

        var job = (Job)item;
        var unknown = job.Tags.FirstOrDefault(t => !tagSlots.ContainsKey(t));
        if (unknown is not null)
        {
            await JobFailedAsync($"actorqueue: job {job.Id}: unknown tag '{unknown}'; add --limit {unknown}=N", job.Seq, $"job {job.Id} failed");
            return;
        }

        var retries = job.Retries ?? options.Retries;
        for (var attempt = 1; ; attempt++)
        {
            var (result, ran, started, runtime) = await RunAttemptAsync(job, jobSlots, tagSlots);
            if (result is null)
            {
                Interlocked.Increment(ref _counts.NotStarted);
                await SkipInOrderAsync(job.Seq);
                return;
            }

            var handedOver = false;
            try
            {
                if (result.End == AttemptEnd.Interrupted)
                {
                    Interlocked.Increment(ref _counts.Killed); // killed by the runner's second Ctrl-C or --halt now: not finished, so not logged
                    Log.Information("Job {JobId} (seq {Seq}) killed by the runner's interruption after {RuntimeSeconds:0.000}s; not in the joblog: {Command}",
                        job.Id, job.Seq, runtime.TotalSeconds, ran.Command);
                    await SkipInOrderAsync(job.Seq);
                    return;
                }

                if (!result.Succeeded && attempt <= retries && !_stop.Kill.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _counts.Retried);
                    if (await BackOffAsync(attempt))
                    {
                        continue;
                    }

                    Interlocked.Increment(ref _counts.NotStarted); // the run stopped during the backoff: its retry never starts
                    await SkipInOrderAsync(job.Seq);
                    return;
                }

                handedOver = true;
                await ReportAsync(ran, result, started, runtime, attempt);
                return;
            }
            finally
            {
                if (!handedOver)
                {
                    result.Dispose();
                }
            }
        }
    }

    private Task SkipInOrderAsync(long seq) => _order?.SkipAsync(seq) ?? Task.CompletedTask;

    /// <summary>Waits before retry <paramref name="attempt"/> (100 ms doubling to 5 s); <c>false</c> when the run stops meanwhile.</summary>
    private async Task<bool> BackOffAsync(int attempt)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _stop.NoNewJobs);
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100 * Math.Pow(2, attempt - 1), 5000)), stopping.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Runs one attempt holding the job's slots; a <c>null</c> result means the run is stopping and the attempt did not start.</summary>
    private async Task<(AttemptResult? Result, Job Ran, DateTimeOffset Started, TimeSpan Runtime)> RunAttemptAsync(
        Job job, ConcurrencyLimiter jobSlots, Dictionary<string, ConcurrencyLimiter> tagSlots)
    {
        var leases = new List<ConcurrencyLease>();
        try
        {
            foreach (var tag in job.Tags.Distinct().Order(StringComparer.Ordinal))
            {
                leases.Add(await tagSlots[tag].AcquireAsync($"job {job.Id}"));
            }

            leases.Add(await jobSlots.AcquireAsync($"job {job.Id}"));
            DateTimeOffset? spaced = null;
            if (Stopping || _spacing is not null && (spaced = await _spacing.WaitTurnAsync(_stop.NoNewJobs)) is null || Stopping)
            {
                return (null, job, default, default);
            }

            var slot = TakeSlot();
            var ran = job.SlotTemplate is { } template ? job with { Command = template.Expand(job.Arguments, job.Seq, slot) } : job;
            Interlocked.Increment(ref _counts.Running);
            var started = spaced ?? DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            try
            {
                return await AttemptAsync(ran) is { } result ? (result, ran, started, clock.Elapsed) : (null, ran, default, default);
            }
            finally
            {
                Interlocked.Decrement(ref _counts.Running);
                lock (_slotGate)
                {
                    _slots[slot - 1] = false;
                }
            }
        }
        finally
        {
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }
    }

    /// <summary>The lowest free job slot, from 1 (a job holds a -j lease, so one is free).</summary>
    private int TakeSlot()
    {
        lock (_slotGate)
        {
            var free = Array.IndexOf(_slots, false);
            Debug.Assert(free >= 0, "a job holding a -j lease always finds a free slot");
            _slots[free] = true;
            return free + 1;
        }
    }

    /// <summary>
    /// One attempt, whatever happens: an executor's exception is the attempt's failure, never lost. <c>null</c> when the
    /// executor itself is gone (the coordinator's cluster stopped): the job did not run or its outcome is unknown, so it
    /// stays out of the joblog and the run stops.
    /// </summary>
    private async Task<AttemptResult?> AttemptAsync(Job job)
    {
        try
        {
            return await executor.RunAsync(job, job.Timeout ?? options.Timeout, _stop.Kill);
        }
        catch (ExecutorLostException ex)
        {
            await StopRunAsync(ex.Message, "jobs not run (or whose outcome is unknown) are not logged; --resume runs them");
            return null;
        }
        catch (OperationCanceledException) when (_stop.Kill.IsCancellationRequested)
        {
            return AttemptResult.Interrupted();
        }
        catch (Exception ex)
        {
            return AttemptResult.CouldNotRun($"could not run ({ex.GetType().Name}: {ex.Message})");
        }
    }

    /// <summary>Reports a finished job (taking over <paramref name="result"/>): the halt rule first, then, in input order with -k, its output and record.</summary>
    private async Task ReportAsync(Job job, AttemptResult result, DateTimeOffset started, TimeSpan runtime, int attempts)
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
            await WriteReportAsync(job, result, started, runtime, attempts);
        }
        else
        {
            await _order.ReportAsync(job.Seq, () => WriteReportAsync(job, result, started, runtime, attempts));
        }
    }

    /// <summary>A job's exit status as a shell reports it: 128 + the signal for a killed job.</summary>
    private static int StatusOf(AttemptResult result) =>
        result.Signal != 0 ? 128 + result.Signal : result.ExitCode is >= 0 and <= 255 ? result.ExitCode : 1;

    private async Task WriteReportAsync(Job job, AttemptResult result, DateTimeOffset started, TimeSpan runtime, int attempts)
    {
        using (result)
        {
            var tries = attempts > 1 ? $" after {attempts} attempts" : "";
            var why = result.End switch
            {
                AttemptEnd.Exited when result.Succeeded => null,
                AttemptEnd.Exited => $"actorqueue: job {job.Id} failed: exited with {result.ExitCode}{tries}: {Shorten(job.Command)}",
                AttemptEnd.TimedOut => $"actorqueue: job {job.Id} failed: timed out after {(job.Timeout ?? options.Timeout)!.Value.TotalSeconds:0.###}s (process group killed){tries}: {Shorten(job.Command)}",
                _ => $"actorqueue: job {job.Id} failed: {result.Problem}{tries}: {Shorten(job.Command)}",
            };
            try
            {
                if (_results is null)
                {
                    await console.WriteJobAsync(job.Id, result.Output, result.Errors, why);
                }
                else
                {
                    await _results.WriteAsync(job, result.Output, result.Errors);
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
                await console.LineAsync($"actorqueue: job {job.Id}: {where} ({ex.Message}); the job is counted as failed and is not in the joblog, so --resume runs it again");
                await StopRunAsync(_results is null ? "stdout cannot be written" : "--results cannot be written");
                return;
            }

            try
            {
                jobLog?.Record(job.Seq, result.Host, started, runtime, result.Output.Length + result.Errors.Length, result.ExitCode, result.Signal, job.Command);
            }
            catch (IOException ex)
            {
                Interlocked.Increment(ref _counts.Failed);
                await console.LineAsync($"actorqueue: job {job.Id}: the joblog could not be written ({ex.Message}); the job is counted as failed and --resume runs it again");
                await StopRunAsync("the joblog cannot be written");
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

    /// <summary>The queue's last resort: anything that escaped a job's handling still counts the job as failed, never lost silently.</summary>
    private async Task OnUnexpectedErrorAsync(Exception exception, object item)
    {
        var what = item switch { Job job => $"job {job.Id}", MalformedJob bad => $"line {bad.LineNumber}", _ => "a job" };
        Log.Error(exception, "Running {What} failed unexpectedly", what);
        var seq = item switch { Job job => job.Seq, MalformedJob bad => bad.Seq, _ => 0 };
        await JobFailedAsync($"actorqueue: {what}: unexpected error ({exception.GetType().Name}: {exception.Message}); the job is counted as failed and is not in the joblog", seq, $"{what} failed");
    }

    /// <summary>A job that failed without running (or unexpectedly): counted, said, and weighed by the halt rule.</summary>
    private async Task JobFailedAsync(string message, long seq, string what)
    {
        Interlocked.Increment(ref _counts.Failed);
        await _stop.FinishedAsync(failed: true, status: 1, what);
        await console.LineAsync(message);
        await SkipInOrderAsync(seq);
    }

    /// <summary>The run cannot go on as asked: no new job starts, running jobs finish, and the exit status says so.</summary>
    private async Task StopRunAsync(string why, string consequence = "no new jobs start; running jobs finish")
    {
        _runFailed = true;
        await _stop.StopAsync($"{why}: {consequence}");
    }

    /// <summary>A command as a message shows it: long ones cut, so a 10 MB command does not flood the terminal.</summary>
    private static string Shorten(string command) => command.Length <= 200 ? command : $"{command[..200]}... ({command.Length} characters)";
}
