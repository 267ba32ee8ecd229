using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// The scheduler demo: simulated jobs compete for a small limiter on the embedded default actor system, and the
/// console shows the gatekeeper's counts live, every wait span, and backpressure when the wait queue is full.
/// </summary>
internal static class DemoCommand
{
    private const int JobCount = 20;
    private const int Slots = 3;
    private const int MaxWaiting = 10;
    private const string LimiterName = "demo-pool";

    public static async Task<int> RunAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var console = new DemoConsole(output);
        var clock = Stopwatch.StartNew();
        console.Line($"ActorQueue demo, part 1: {JobCount} jobs share a limiter of {Slots} slots with at most {MaxWaiting} waiting.");
        console.Line($"Actor system: '{ActorQueueRuntime.DefaultSystemName}' (embedded default, configured from hocon/actorqueue.conf).");
        console.Line("");

        using var spans = ListenToWaitSpans(console, clock);
        await using var limiter = new ConcurrencyLimiter(Slots, MaxWaiting, LimiterName);
        var random = new Random(7);
        var plans = Enumerable.Range(1, JobCount)
            .Select(i => new JobPlan($"job-{i:00}", ArrivalMs: i <= 14 ? 0 : (i - 14) * 250, WorkMs: random.Next(150, 600)))
            .ToArray();
        var stats = new DemoStats();

        using var statusCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var status = ShowStatusAsync(limiter, stats, console, clock, statusCts.Token);
        try
        {
            await Task.WhenAll(plans.Select(plan => RunJobAsync(plan, limiter, stats, console, clock, cancellationToken)));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            console.Line("Interrupted.");
            return Usage.InterruptedExitCode;
        }
        finally
        {
            await statusCts.CancelAsync();
            await status;
        }

        console.Status(Describe(limiter, stats, clock));
        console.Line("");
        console.Line($"Done: {stats.Done} jobs in {clock.Elapsed.TotalSeconds:0.00}s; {stats.Rejections} rejection(s) by max_queued, each retried; " +
                     $"at most {stats.MaxRunning} ran at once; longest wait {stats.LongestWaitMs:0} ms.");
        var limiterOk = stats.MaxRunning <= Slots && stats.Done == JobCount;

        console.Line("");
        var queueOk = await RunQueuePartAsync(console, cancellationToken);
        return limiterOk && queueOk ? 0 : 1;
    }

    /// <summary>
    /// Part two: a producer feeds a small WorkQueue faster than its limited worker pool drains it, so puts meet
    /// backpressure and retry; one job fails and reaches the error handler; nothing is lost.
    /// </summary>
    private static async Task<bool> RunQueuePartAsync(DemoConsole console, CancellationToken cancellationToken)
    {
        const int Jobs = 24;
        const int FailingJob = 13;
        var clock = Stopwatch.StartNew();
        console.Line($"Part 2: a producer puts {Jobs} jobs into a WorkQueue of 5 slots (put timeout 50 ms); " +
                     "4 workers pull from it, and a limiter lets 3 run at once.");
        await using var queue = new WorkQueue<int>(maxSize: 5, timeout: TimeSpan.FromMilliseconds(50), concurrencyLimit: 3, name: "demo-queue");
        await queue.StartAsync(cancellationToken);
        var random = new Random(11);
        var workMs = Enumerable.Range(0, Jobs + 1).Select(_ => random.Next(100, 250)).ToArray();
        await queue.ProcessAsync(async (job, ct) =>
        {
            await Task.Delay(workMs[job], ct);
            if (job == FailingJob)
            {
                throw new InvalidOperationException($"job {job} hit a simulated failure");
            }
        }, numWorkers: 4, errorHandler: (error, job) =>
        {
            console.Line($"{Stamp(clock)}  error handler: {error.Message}");
            return Task.CompletedTask;
        });

        using var statusCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var status = ShowQueueStatusAsync(queue, console, clock, statusCts.Token);
        try
        {
            for (var job = 1; job <= Jobs; job++)
            {
                while (!await queue.PutAsync(job, cancellationToken))
                {
                    console.Line($"{Stamp(clock)}  backpressure: queue full for 50 ms, job {job} tries again");
                }

                await Task.Delay(15, cancellationToken);
            }

            await queue.JoinAsync(cancellationToken);
            await queue.StopAsync();
        }
        finally
        {
            await statusCts.CancelAsync();
            await status;
        }

        var metrics = queue.Metrics;
        console.Status(DescribeQueue(queue, clock));
        console.Line("");
        console.Line($"Done: {metrics.Enqueued} enqueued, {metrics.Processed} processed ({metrics.Errors} failed, reported to the error handler), " +
                     $"{metrics.BackpressureEvents} backpressure event(s), in {clock.Elapsed.TotalSeconds:0.00}s; nothing lost.");
        return metrics.Enqueued == Jobs && metrics.Processed == Jobs && metrics.Errors == 1;
    }

    private static async Task ShowQueueStatusAsync(WorkQueue<int> queue, DemoConsole console, Stopwatch clock, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                console.Status(DescribeQueue(queue, clock));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string DescribeQueue(WorkQueue<int> queue, Stopwatch clock)
    {
        var metrics = queue.Metrics;
        return $"{Stamp(clock)}  [demo-queue] {queue.Status,-10} depth {queue.Size}/5  running {queue.Limiter!.RunningCount}/3  " +
               $"enqueued {metrics.Enqueued,2}  processed {metrics.Processed,2}  errors {metrics.Errors}  backpressure {metrics.BackpressureEvents}";
    }

    private static async Task RunJobAsync(JobPlan plan, ConcurrencyLimiter limiter, DemoStats stats, DemoConsole console,
                                          Stopwatch clock, CancellationToken cancellationToken)
    {
        await Task.Delay(plan.ArrivalMs, cancellationToken);
        while (true)
        {
            var asked = clock.Elapsed;
            try
            {
                using var lease = await limiter.AcquireAsync(plan.Name, cancellationToken);
                var waited = (clock.Elapsed - asked).TotalMilliseconds;
                stats.Started(waited);
                console.Line($"{Stamp(clock)}  {plan.Name} started after waiting {waited,4:0} ms; works {plan.WorkMs} ms");
                await Task.Delay(plan.WorkMs, cancellationToken);
                stats.Finished();
                console.Line($"{Stamp(clock)}  {plan.Name} done");
                return;
            }
            catch (ConcurrencyLimitExceededException rejected)
            {
                stats.Rejected();
                console.Line($"{Stamp(clock)}  {plan.Name} rejected: {rejected.Message}; retrying in 400 ms");
                await Task.Delay(400, cancellationToken);
            }
        }
    }

    private static async Task ShowStatusAsync(ConcurrencyLimiter limiter, DemoStats stats, DemoConsole console, Stopwatch clock,
                                              CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                console.Status(Describe(limiter, stats, clock));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string Describe(ConcurrencyLimiter limiter, DemoStats stats, Stopwatch clock) =>
        $"{Stamp(clock)}  [{LimiterName}] running {limiter.RunningCount}/{limiter.MaxRunning}  waiting {limiter.WaitingCount,2}/{limiter.MaxQueued}" +
        $"  done {stats.Done,2}/{JobCount}  rejected {stats.Rejections}";

    private static ActivityListener ListenToWaitSpans(DemoConsole console, Stopwatch clock)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ActorQueueTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if ((activity.GetTagItem("limiter_name") as string) == LimiterName)
                {
                    console.Line(
                $"{Stamp(clock)}  span '{activity.DisplayName}' source={activity.GetTagItem("source")} " +
                        $"queued at position {activity.GetTagItem("waiting_count")} lasted {activity.Duration.TotalMilliseconds:0} ms");
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private static string Stamp(Stopwatch clock) => $"{clock.Elapsed.TotalSeconds,6:0.00}s";

    private sealed record JobPlan(string Name, int ArrivalMs, int WorkMs);

    /// <summary>What the jobs observed, counted from their own side of the limiter.</summary>
    private sealed class DemoStats
    {
        private int _running;
        private int _maxRunning;
        private int _done;
        private int _rejections;
        private long _longestWaitMs;

        public int Done => Volatile.Read(ref _done);

        public int Rejections => Volatile.Read(ref _rejections);

        public int MaxRunning => Volatile.Read(ref _maxRunning);

        public double LongestWaitMs => Interlocked.Read(ref _longestWaitMs);

        public void Started(double waitedMs)
        {
            var now = Interlocked.Increment(ref _running);
            int seen;
            while (now > (seen = Volatile.Read(ref _maxRunning)) && Interlocked.CompareExchange(ref _maxRunning, now, seen) != seen)
            {
            }

            long longest;
            while ((long)waitedMs > (longest = Interlocked.Read(ref _longestWaitMs)) &&
                   Interlocked.CompareExchange(ref _longestWaitMs, (long)waitedMs, longest) != longest)
            {
            }
        }

        public void Finished()
        {
            Interlocked.Decrement(ref _running);
            Interlocked.Increment(ref _done);
        }

        public void Rejected() => Interlocked.Increment(ref _rejections);
    }
}
