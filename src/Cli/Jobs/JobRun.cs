using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Cli.Commands;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// One run: the queue, the limiters, the counters and the output. Every job read ends in exactly one count: succeeded,
/// failed (malformed, could not run, exited non-zero, timed out, or its output or joblog record could not be written),
/// killed by the runner's interruption, or not started because the run stopped; the exit status follows from them.
/// </summary>
/// <remarks>
/// The run's parts by job: this file feeds the queue and sums up; <c>JobRun.Attempts.cs</c> runs one job (its slots,
/// attempts and retries); <c>JobRun.Report.cs</c> reports a finished job (output, joblog, state).
/// </remarks>
internal sealed partial class JobRun(RunOptions options, RunConsole console, JobLog? jobLog, Interrupts interrupts, Task<long?> total, IJobExecutor executor,
                                     RunState? state = null)
{
    /// <summary>More workers than this would only add actors: -j above it runs at most this many jobs at once, with a warning.</summary>
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

    /// <summary>1 once a run failure was said (<see cref="StopRunAsync"/>).</summary>
    private int _runFailureSaid;

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
        await using var jobSlots = new ConcurrencyLimiter(options.Jobs, name: "jobs");
        var tagSlots = options.Limits.ToDictionary(l => l.Key, l => new ConcurrencyLimiter(l.Value, name: $"tag-{l.Key}"));
        try
        {
            IJobQueue queue;
            try
            {
                queue = state is null ? new MemoryJobQueue(ReadAhead(options)) : DurableJobQueue.Open(state, ReadAhead(options));
            }
            catch (RunStateException ex)
            {
                return await StateProblemAsync(ex.Message);
            }

            await using (queue)
            {
                return await FeedAsync(queue, read, jobSlots, tagSlots, clock);
            }
        }
        finally
        {
            foreach (var limiter in tagSlots.Values)
            {
                await limiter.DisposeAsync();
            }
        }
    }

    /// <summary>Puts every job read into <paramref name="queue"/>, waits for them, and sums up; returns the exit status.</summary>
    private async Task<int> FeedAsync(IJobQueue queue, Func<CancellationToken, IAsyncEnumerable<object>> read, ConcurrencyLimiter jobSlots,
                                      Dictionary<string, ConcurrencyLimiter> tagSlots, Stopwatch clock)
    {
        var alreadyFinished = queue.Finished ?? jobLog?.Finished ?? new HashSet<long>();
        // Tagged jobs wait for their tag before they take a -j slot, so extra workers keep untagged jobs moving.
        var workers = (int)Math.Min(options.Jobs + options.Limits.Values.Sum(v => (long)v), MaxWorkers);
        try
        {
            await queue.StartAsync(item => RunItemAsync(item, jobSlots, tagSlots), workers, OnUnexpectedErrorAsync);
        }
        catch (RunStateException ex)
        {
            return await StateProblemAsync(ex.Message);
        }

        using var feeding = CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _stop.NoNewJobs);
        await using var input = read(feeding.Token).GetAsyncEnumerator(feeding.Token);
        var stoppedEarly = false;
        List<object> recorded = [];
        try
        {
            // With --state, the input must give the jobs the state recorded before any of them runs.
            if (queue is DurableJobQueue durable && await durable.ReadRecordedAsync(input, SkipFinishedAsync) is var (unfinished, problem))
            {
                if (problem is not null)
                {
                    await queue.StopAsync();
                    return await StateProblemAsync(problem);
                }

                recorded = unfinished;
            }
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

        // The run is accepted (its state, if any, belongs to this input and its queue opened): only now does an existing
        // joblog change. A stop before this point started no job and leaves it as it was.
        if (!stoppedEarly && await BeginJobLogAsync() is { } refused)
        {
            await queue.StopAsync();
            return refused;
        }

        if (!stoppedEarly)
        {
            Accepted?.Invoke();
        }

        using var progressStop = new CancellationTokenSource();
        var reporter = new RunProgress(options, console, _counts, total, clock);
        var progress = options.Quiet && !options.Eta ? Task.CompletedTask : reporter.ShowAsync(() => queue.Size, progressStop.Token);
        // A job read whose put the stop withdrew (a cancelled put adds nothing): not started, so counted with the unstarted.
        var withdrawn = 0;
        try
        {
            foreach (var item in recorded)
            {
                Expect(queue, item);
                withdrawn = 1;
                await queue.PutAsync(item, feeding.Token);
                withdrawn = 0;
            }

            while (!stoppedEarly && await input.MoveNextAsync())
            {
                if (input.Current is Job job && alreadyFinished.Contains(job.Seq))
                {
                    await SkipFinishedAsync(job.Seq);
                    continue;
                }

                Expect(queue, input.Current);
                withdrawn = 1;
                await queue.PutAsync(input.Current, feeding.Token);
                withdrawn = 0;
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
        catch (RunStateException ex)
        {
            await StopRunAsync($"--state cannot be written ({ex.Message})");
            stoppedEarly = true;
        }

        // Running jobs finish; jobs still queued are taken back, not started and not logged, so --resume runs them.
        var unstarted = await queue.StopAsync();
        if (_order is not null)
        {
            await _order.FlushAsync();
        }

        await progressStop.CancelAsync();
        await progress;
        await reporter.PrintSummaryAsync(unstarted + _counts.NotStarted + withdrawn, stoppedEarly);

        // Interrupted (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT): 130 whatever failed, so a script never takes the run for done;
        // the summary says what ran.
        if (interrupts.StopInput.IsCancellationRequested)
        {
            return Commands.Usage.InterruptedExitCode;
        }

        // A run stopped by its own failure is no count of failed jobs (it may have none): 255, GNU parallel's "other error".
        if (_runFailed)
        {
            return Commands.Usage.RunFailedExitCode;
        }

        var failures = _counts.Failed + _counts.Killed;
        return _stop.ExitStatus(_counts.Killed) ?? (failures == 0 ? 0 : Math.Clamp(failures, 1, 101));
    }

    /// <summary>
    /// With --delay, a job about to be queued starts in its place, after the jobs queued before it. A queue that may hand
    /// out later jobs first (a restart's recovered copies) orders only the jobs that workers hold, which never wait for
    /// a job no worker may take.
    /// </summary>
    private void Expect(IJobQueue queue, object item)
    {
        if (queue.InOrder && item is Job job)
        {
            _spacing?.Expect(job.Seq);
        }
    }

    /// <summary>A job an earlier run finished (the joblog or the state says so): counted as skipped, and its place in -k's order passes.</summary>
    private Task SkipFinishedAsync(long seq)
    {
        _counts.Skipped++;
        return SkipInOrderAsync(seq);
    }

    /// <summary>
    /// Whether the run was refused for its state (<see cref="StateProblemAsync"/>) or its joblog (<see cref="BeginJobLogAsync"/>):
    /// no job started, so the outputs the run made for it are removed, as after any usage error (<c>RunOutputs.Refused</c>).
    /// </summary>
    public bool Refused { get; private set; }

    /// <summary>Called once, when the run is accepted (its state belongs to its input, its queue opened, its joblog began), before any job is put.</summary>
    public Action? Accepted { get; init; }

    /// <summary>The state file cannot be used, or belongs to another input: one line, exit 255, no job started.</summary>
    private Task<int> StateProblemAsync(string problem) => RefuseAsync($"--state: {problem}");

    /// <summary>A usage error found once the run was under way, before any job started: one line, exit 255.</summary>
    private async Task<int> RefuseAsync(string problem)
    {
        Refused = true;
        await console.LineAsync($"actorqueue: {problem}");
        return Commands.Usage.UsageErrorExitCode;
    }

    /// <summary>
    /// Starts the joblog as the run starts (<see cref="JobLog.BeginAsync"/>: a new log gets its header, a resumed one loses
    /// its incomplete last record, said here); the exit status of a refusal when it cannot be written, else <c>null</c>.
    /// </summary>
    private async Task<int?> BeginJobLogAsync()
    {
        if (jobLog is null)
        {
            return null;
        }

        try
        {
            await jobLog.BeginAsync();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await RefuseAsync($"--joblog: cannot write '{jobLog.Path}': {Commands.Usage.Reason(jobLog.Path, ex)}");
        }

        if (jobLog.DroppedBytes > 0)
        {
            await console.LineAsync($"actorqueue: --joblog: dropped an incomplete last record ({jobLog.DroppedBytes} bytes, from a run that stopped mid-write); that job runs again");
        }

        return null;
    }

    /// <summary>
    /// The run cannot go on as asked: no new job starts, running jobs finish, and the exit status says so. The first
    /// failure is said even when a halt stopped the run before (its exit status, 255, would otherwise go unexplained).
    /// </summary>
    private async Task StopRunAsync(string why, string consequence = "no new jobs start; running jobs finish")
    {
        _runFailed = true;
        if (Interlocked.Exchange(ref _runFailureSaid, 1) != 0)
        {
            // Another run failure came first and says it (through the stop, or after a halt's): this one only stops.
            // Before, the first to claim the saying could lose the stop to a later one, and both said it.
            await _stop.StopAsync(message: null);
            return;
        }

        if (!await _stop.StopAsync($"{why}: {consequence}"))
        {
            await console.LineAsync($"actorqueue: {why}: {consequence}");
        }
    }
}
