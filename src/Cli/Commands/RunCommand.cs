using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Cli.Jobs;
using Serilog;
using Serilog.Formatting.Compact;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>actorqueue run</c>: a parallel job runner on ActorQueue. Jobs are read lazily into a <see cref="BoundedQueue{T}"/>;
/// its workers take a slot in each named limiter a job is tagged with, then one of the <c>-j</c> slots, and run the
/// command. Output is printed whole when a job ends; the joblog records every finished job.
/// </summary>
internal static class RunCommand
{
    /// <summary>How many jobs a file holds (lines that are neither blank nor comments); <c>null</c> if it cannot be read.</summary>
    private static long? CountJobs(string path)
    {
        try
        {
            return File.ReadLines(path).LongCount(line => line.Trim() is { Length: > 0 } text && !text.StartsWith('#'));
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, Interrupts interrupts)
    {
        var (options, problem) = RunOptions.Parse(args);
        if (options is null)
        {
            return Usage.Fail(stderr, problem!);
        }

        TextReader input;
        try
        {
            input = options.Input == "-" ? Console.In : new StreamReader(options.Input);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Usage.Fail(stderr, $"cannot read '{options.Input}': {ex.Message}");
        }

        if (options.LogFile is { } logFile)
        {
            // Structured JSON (CLEF) for every event: the library's queue and limiter logs and one event per job.
            Log.Logger = new LoggerConfiguration()
                .MinimumLevel.Information()
                .WriteTo.Logger(Log.Logger)
                .WriteTo.File(new CompactJsonFormatter(), logFile)
                .CreateLogger();
        }

        using (input)
        {
            var finished = options.Resume ? JobLog.ReadFinished(options.JobLog!) : [];
            using var jobLog = options.JobLog is { } path ? JobLog.Open(path, append: options.Resume) : null;
            // A file's job count comes from a second, streaming pass, so progress can show an ETA; stdin has no total.
            var total = options.Input == "-" ? Task.FromResult<long?>(null) : Task.Run(() => CountJobs(options.Input));
            if (!options.Cluster)
            {
                return await new JobRun(options, stdout, stderr, jobLog, interrupts, total, LocalJobExecutor.Instance).ExecuteAsync(input, finished);
            }

            ClusterSession? cluster;
            try
            {
                cluster = await ClusterSession.StartCoordinatorAsync(options.ClusterNode!, options.MinNodes,
                    options.MaxQueued ?? Math.Max(2 * options.Jobs, 16), stderr, interrupts.StopInput);
            }
            catch (ArgumentException ex)
            {
                return Usage.Fail(stderr, ex.Message);
            }

            if (cluster is null)
            {
                stderr.WriteLine("actorqueue: interrupted while waiting for worker nodes; no job started");
                return 130;
            }

            await using (cluster)
            {
                return await new JobRun(options, stdout, stderr, jobLog, interrupts, total, cluster.Executor).ExecuteAsync(input, finished);
            }
        }
    }
}

/// <summary>One run: the queue, the limiters, the counters and the output.</summary>
internal sealed class JobRun(RunOptions options, TextWriter stdout, TextWriter stderr, JobLog? jobLog, Interrupts interrupts, Task<long?> total, IJobExecutor executor)
{
    private readonly Lock _outputGate = new();
    private readonly DurationSample _durations = new();
    private readonly CancellationTokenSource _halt = new();
    private int _succeeded;
    private int _failed;
    private int _killed;
    private int _retried;
    private int _running;
    private int _skipped;
    private int _notStarted;

    /// <summary>Set by --halt-on-failure or the first Ctrl-C: jobs not yet started stay unstarted (and unlogged, so --resume runs them).</summary>
    private bool Stopping => _halt.IsCancellationRequested || interrupts.StopInput.IsCancellationRequested;

    public async Task<int> ExecuteAsync(TextReader input, HashSet<long> alreadyFinished)
    {
        var clock = Stopwatch.StartNew();
        await using var jobSlots = new ConcurrencyLimiter(options.Jobs, name: "jobs");
        var tagSlots = options.Limits.ToDictionary(l => l.Key, l => new ConcurrencyLimiter(l.Value, name: $"tag-{l.Key}"));
        try
        {
            // Tagged jobs wait for their tag before they take a -j slot, so extra workers keep untagged jobs moving.
            var workers = Math.Min(options.Jobs + options.Limits.Values.Sum(), 4096);
            // One job per worker at a time (worker batch 1): jobs are long, and -j N means N jobs run at once, so a job
            // must never wait in a worker's run behind another job while a slot is free.
            await using var queue = new BoundedQueue<object>(options.MaxQueued ?? Math.Max(2 * options.Jobs, 16), Timeout.InfiniteTimeSpan,
                BoundedQueue<object>.DefaultHeartbeatPeriod, logger: null, system: null, name: "jobs", workerBatch: 1);
            await queue.StartAsync();
            await queue.StartWorkersAsync((item, _) => RunItemAsync(item, jobSlots, tagSlots), workers);

            using var feeding = CancellationTokenSource.CreateLinkedTokenSource(interrupts.StopInput, _halt.Token);
            using var progressStop = new CancellationTokenSource();
            var progress = options.Quiet ? Task.CompletedTask : ShowProgressAsync(queue, clock, progressStop.Token);
            var stoppedEarly = false;
            try
            {
                await foreach (var item in JobReader.ReadAsync(input, options.Jsonl, feeding.Token))
                {
                    if (item is Job job && alreadyFinished.Contains(job.Seq))
                    {
                        _skipped++;
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

            // Running jobs finish; jobs still queued are not started and not logged, so --resume runs them.
            await queue.StopAsync(Timeout.InfiniteTimeSpan);
            await progressStop.CancelAsync();
            await progress;
            var notStarted = queue.Size + _notStarted;
            PrintSummary(clock.Elapsed, notStarted, stoppedEarly);
        }
        finally
        {
            foreach (var limiter in tagSlots.Values)
            {
                await limiter.DisposeAsync();
            }
        }

        return _failed + _killed == 0 && !interrupts.StopInput.IsCancellationRequested ? 0 : Math.Clamp(_failed + _killed, 1, 101);
    }

    private async Task RunItemAsync(object item, ConcurrencyLimiter jobSlots, Dictionary<string, ConcurrencyLimiter> tagSlots)
    {
        if (item is MalformedJob malformed)
        {
            Interlocked.Increment(ref _failed);
            WriteError($"actorqueue: line {malformed.LineNumber}: {malformed.Problem}; the job is counted as failed");
            HaltIfAsked();
            return;
        }

        var job = (Job)item;
        var unknown = job.Tags.FirstOrDefault(t => !tagSlots.ContainsKey(t));
        if (unknown is not null)
        {
            Interlocked.Increment(ref _failed);
            WriteError($"actorqueue: job {job.Id}: unknown tag '{unknown}'; add --limit {unknown}=N");
            HaltIfAsked();
            return;
        }

        var retries = job.Retries ?? options.Retries;
        for (var attempt = 1; ; attempt++)
        {
            var (result, started, runtime) = await RunAttemptAsync(job, jobSlots, tagSlots);
            if (result is null)
            {
                Interlocked.Increment(ref _notStarted);
                return;
            }

            if (result.Signal != 0 && !result.TimedOut)
            {
                Interlocked.Increment(ref _killed); // killed by a second Ctrl-C: not finished, so not logged
                return;
            }

            if (!result.Succeeded && attempt <= retries && !interrupts.Kill.IsCancellationRequested)
            {
                Interlocked.Increment(ref _retried);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100 * Math.Pow(2, attempt - 1), 5000)));
                continue;
            }

            Report(job, result, started, runtime, attempt);
            return;
        }
    }

    /// <summary>Runs one attempt holding the job's slots; a <c>null</c> result means the run is stopping and the job did not start.</summary>
    private async Task<(AttemptResult? Result, DateTimeOffset Started, TimeSpan Runtime)> RunAttemptAsync(
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
            if (Stopping)
            {
                return (null, default, default);
            }

            Interlocked.Increment(ref _running);
            var started = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            try
            {
                var result = await executor.RunAsync(job, job.Timeout ?? options.Timeout, interrupts.Kill);
                return (result, started, clock.Elapsed);
            }
            finally
            {
                Interlocked.Decrement(ref _running);
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

    private void Report(Job job, AttemptResult result, DateTimeOffset started, TimeSpan runtime, int attempts)
    {
        if (!result.Succeeded)
        {
            HaltIfAsked(); // before anything is printed or logged, so no job starts once this failure shows
        }

        _durations.Add(runtime.TotalSeconds);
        lock (_outputGate)
        {
            WriteWhole(stdout, result.Output, job.Id);
            WriteWhole(stderr, result.Errors, job.Id);
            if (!result.Succeeded)
            {
                var why = result.TimedOut ? $"timed out after {(job.Timeout ?? options.Timeout)!.Value.TotalSeconds:0.###}s (process tree killed)" : $"exited with {result.ExitCode}";
                stderr.WriteLine($"actorqueue: job {job.Id} failed: {why}{(attempts > 1 ? $" after {attempts} attempts" : "")}: {job.Command}");
            }
        }

        jobLog?.Record(job.Seq, result.Host, started, runtime, result.Output.Length + result.Errors.Length, result.ExitCode, result.Signal, job.Command);
        Log.Information("Job {JobId} (seq {Seq}) {Outcome} with exit {ExitCode} in {RuntimeSeconds:0.000}s after {Attempts} attempt(s): {Command}",
            job.Id, job.Seq, result.Succeeded ? "succeeded" : result.TimedOut ? "timed out" : "failed", result.ExitCode, runtime.TotalSeconds, attempts, job.Command);
        if (result.Succeeded)
        {
            Interlocked.Increment(ref _succeeded);
        }
        else
        {
            Interlocked.Increment(ref _failed);
        }
    }

    private void HaltIfAsked()
    {
        if (options.HaltOnFailure && !_halt.IsCancellationRequested)
        {
            WriteError("actorqueue: --halt-on-failure: no new jobs start; running jobs finish");
            _halt.Cancel();
        }
    }

    private void WriteWhole(TextWriter writer, string text, string id)
    {
        if (text.Length == 0)
        {
            return;
        }

        if (!options.Tag)
        {
            writer.Write(text);
            if (!text.EndsWith('\n'))
            {
                writer.WriteLine();
            }

            return;
        }

        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            writer.WriteLine($"{id}\t{line}");
        }
    }

    private void WriteError(string message)
    {
        lock (_outputGate)
        {
            stderr.WriteLine(message);
        }
    }

    private async Task ShowProgressAsync(BoundedQueue<object> queue, Stopwatch clock, CancellationToken cancellationToken)
    {
        var terminal = !Console.IsErrorRedirected;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(terminal ? 250 : 2000));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var done = _succeeded + _failed;
                var rate = done / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
                var known = total.IsCompletedSuccessfully ? total.Result : null;
                var progress = known is { } all ? $"{done + _skipped}/{all}" : $"{done}";
                var eta = known is { } jobs && rate > 0 ? $", ETA {Math.Max(0, jobs - done - _skipped) / rate:0}s" : "";
                var line = $"actorqueue: {progress} done, {Volatile.Read(ref _running)} running, {queue.Size} waiting, {_failed} failed, {rate:0.0} jobs/s{eta}";
                lock (_outputGate)
                {
                    if (terminal)
                    {
                        stderr.Write($"\r\u001b[2K{line}");
                    }
                    else
                    {
                        stderr.WriteLine(line);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        if (terminal)
        {
            lock (_outputGate)
            {
                stderr.Write("\r\u001b[2K");
            }
        }
    }

    private void PrintSummary(TimeSpan elapsed, int notStarted, bool stoppedEarly)
    {
        if (options.Quiet)
        {
            return;
        }

        double Percentile(double p) => _durations.Percentile(p);
        var done = _succeeded + _failed;
        var line = $"actorqueue: {done} jobs in {elapsed.TotalSeconds:0.00}s ({done / Math.Max(elapsed.TotalSeconds, 0.001):0.0} jobs/s): " +
                   $"{_succeeded} succeeded, {_failed} failed, {_retried} retries; job duration p50 {Percentile(0.5):0.000}s, p95 {Percentile(0.95):0.000}s";
        if (_skipped > 0)
        {
            line += $"; {_skipped} skipped (already in the joblog)";
        }

        if (stoppedEarly)
        {
            line += $"; stopped early, {notStarted} queued job(s) not started" + (options.JobLog is null ? "" : " (--resume runs them)");
        }

        if (_killed > 0)
        {
            line += $"; {_killed} killed";
        }

        WriteError(line);
    }
}

/// <summary>Ctrl-C: the first press stops reading input (running jobs finish); the second kills running jobs.</summary>
internal sealed class Interrupts : IDisposable
{
    private readonly CancellationTokenSource _stopInput = new();
    private readonly CancellationTokenSource _kill = new();
    private int _presses;

    public CancellationToken StopInput => _stopInput.Token;

    public CancellationToken Kill => _kill.Token;

    public void Press()
    {
        switch (Interlocked.Increment(ref _presses))
        {
            case 1:
                Console.Error.WriteLine("\nactorqueue: interrupted: no new jobs start; running jobs finish (Ctrl-C again kills them)");
                _stopInput.Cancel();
                break;
            default:
                Console.Error.WriteLine("\nactorqueue: killing running jobs");
                _kill.Cancel();
                break;
        }
    }

    public void Dispose()
    {
        _stopInput.Dispose();
        _kill.Dispose();
    }
}
