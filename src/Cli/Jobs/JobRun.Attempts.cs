using System.Diagnostics;
using ActorQueue.Actors;
using Serilog;

namespace ActorQueue.Cli.Jobs;

/// <summary>One job of the run: its slots (tags, then -j), its attempts with --retries and backoff, and its failures without a run.</summary>
internal sealed partial class JobRun
{
    /// <summary>Runs one job read (or fails a bad line) and says how it ended: only a finished job is recorded and never runs again.</summary>
    private async Task<JobEnd> RunItemAsync(object item, ConcurrencyLimiter jobSlots, Dictionary<string, ConcurrencyLimiter> tagSlots)
    {
        if (item is MalformedJob malformed)
        {
            await JobFailedAsync($"actorqueue: line {malformed.LineNumber}: {malformed.Problem}; the job is counted as failed", malformed.Seq, $"line {malformed.LineNumber} failed");
            return JobEnd.NotFinished;
        }

        var job = (Job)item;
        try
        {
            return await RunJobAsync(job, jobSlots, tagSlots);
        }
        finally
        {
            _spacing?.Forget(job.Seq); // a job that did not start: the jobs after it no longer wait for its turn
        }
    }

    /// <summary>Runs one job: its attempts, each holding the job's slots, with --retries and backoff.</summary>
    private async Task<JobEnd> RunJobAsync(Job job, ConcurrencyLimiter jobSlots, Dictionary<string, ConcurrencyLimiter> tagSlots)
    {
        var unknown = job.Tags.FirstOrDefault(t => !tagSlots.ContainsKey(t));
        if (unknown is not null)
        {
            await JobFailedAsync($"actorqueue: job {job.Id}: unknown tag '{unknown}'; add --limit {unknown}=N", job.Seq, $"job {job.Id} failed");
            return JobEnd.NotFinished;
        }

        var retries = job.Retries ?? options.Retries;
        for (var attempt = 1; ; attempt++)
        {
            var (result, ran, started, runtime) = await RunAttemptAsync(job, jobSlots, tagSlots);
            if (result is null)
            {
                Interlocked.Increment(ref _counts.NotStarted);
                await SkipInOrderAsync(job.Seq);
                return JobEnd.NotFinished;
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
                    return JobEnd.NotFinished;
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
                    return JobEnd.NotFinished;
                }

                handedOver = true;
                var succeeded = result.Succeeded;
                await ReportAsync(ran, job.Command, result, started, runtime, attempt);
                return succeeded ? JobEnd.Succeeded : JobEnd.Failed;
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

    /// <summary>1 once the run said that the jobs handed back after its stop with no worker node left are not started (<see cref="AttemptAsync"/>).</summary>
    private int _handedBackSaid;

    /// <summary>1 once the run said that the jobs withdrawn from the cluster's queue at its stop are not started (<see cref="AttemptAsync"/>).</summary>
    private int _withdrawnSaid;

    /// <summary>Writes <paramref name="line"/> to the console the first time only (<paramref name="said"/> is 1 after it).</summary>
    private Task SayOnceAsync(ref int said, string line) => Interlocked.Exchange(ref said, 1) == 0 ? console.LineAsync(line) : Task.CompletedTask;

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
        using var stopping = _spacing is null ? null : CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _stop.NoNewJobs);
        StartSpacing.Turn? turn = null;
        // Out of the queue and not started: the progress line counts it as waiting until it starts or leaves, once.
        Interlocked.Increment(ref _counts.Waiting);
        var waiting = true;
        try
        {
            // With --delay the turn, in input order, comes first: the slots are taken one job at a time, in that order.
            if (_spacing is not null && (Stopping || (turn = await _spacing.TakeTurnAsync(job.Seq, stopping!.Token)) is null))
            {
                return (null, job, default, default);
            }

            foreach (var tag in job.Tags.Distinct().Order(StringComparer.Ordinal))
            {
                var acquiring = tagSlots[tag].AcquireAsync($"job {job.Id}");
                if (turn is not null && !acquiring.IsCompleted)
                {
                    // Its tag's slot is busy: it gives up its turn, so later jobs start meanwhile instead of waiting behind a
                    // tag (a job holding the slot may be waiting for one of them), and takes a turn again once it has the slot.
                    turn.Dispose();
                    turn = null;
                }

                leases.Add(await acquiring);
            }

            if (_spacing is not null && turn is null && (Stopping || (turn = await _spacing.TakeTurnAsync(job.Seq, stopping!.Token)) is null))
            {
                return (null, job, default, default);
            }

            leases.Add(await jobSlots.AcquireAsync($"job {job.Id}"));
            DateTimeOffset? spaced = null;
            if (Stopping || turn is not null && (spaced = await turn.WaitDelayAsync(stopping!.Token)) is null || Stopping)
            {
                return (null, job, default, default);
            }

            turn?.Dispose(); // this job starts now: the next one's turn begins
            var slot = TakeSlot();
            var ran = job.SlotTemplate is { } template ? job with { Command = template.Expand(job.Arguments, job.Seq, slot) } : job;
            waiting = false;
            Interlocked.Decrement(ref _counts.Waiting); // before it counts as running, so it is never counted twice
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
            if (waiting)
            {
                Interlocked.Decrement(ref _counts.Waiting); // it leaves without starting (the run stops)
            }

            turn?.Dispose();
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
    /// stays out of the joblog and the run stops. <c>null</c> too for a remote job not started again after the run stopped
    /// (withdrawn from the cluster's queue, or handed back with no worker node left to run it): counted as not started,
    /// not logged.
    /// </summary>
    private async Task<AttemptResult?> AttemptAsync(Job job)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _stop.NoNewJobs);
        try
        {
            return await executor.RunAsync(job, job.Timeout ?? options.Timeout, _stop.Kill, stopping.Token);
        }
        catch (JobHandedBackException handedBack)
        {
            var unlogged = options.RerunsUnfinished is { } rerun ? $"(not logged, {rerun} runs them)" : "(counted as not started)";
            if (handedBack.Withdrawn)
            {
                await SayOnceAsync(ref _withdrawnSaid, "actorqueue: the run is stopping, so the jobs no worker node runs (queued in the cluster, or handed back by nodes that left) are withdrawn and not started " + unlogged);
                Log.Information("Job {JobId} (seq {Seq}) was withdrawn from the cluster's queue after the run stopped; not started, not in the joblog: {Command}", job.Id, job.Seq, job.Command);
                return null;
            }

            await SayOnceAsync(ref _handedBackSaid, "actorqueue: no worker node is left to run the jobs handed back by the nodes that stopped; the run is stopping, so they are not started " + unlogged);
            Log.Information("Job {JobId} (seq {Seq}) was handed back after the run stopped, with no worker node left; not started, not in the joblog: {Command}", job.Id, job.Seq, job.Command);
            return null;
        }
        catch (ExecutorLostException ex)
        {
            // Without a joblog (or --state) nothing records them: "not logged" would speak of a log the run does not keep.
            await StopRunAsync(ex.Message, "no new jobs start; jobs not run (or whose outcome is unknown) "
                + (options.RerunsUnfinished is { } rerun ? $"are not logged; {rerun} runs them" : "count as not started"));
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
}
