using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// What a worker runs off its actor's thread: a task that works through its run, reports it to the router, and takes
/// the next run the router hands over (see <see cref="WorkerRun{T}"/>), until the worker stops.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
internal static class WorkerTask<T>
{
    /// <summary>
    /// Works through each run the router gives this task, reports it, and goes on with the next run the router hands
    /// over (at once, or after parking), until the worker stops.
    /// </summary>
    public static async Task RunAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, WorkerRun<T> run, IActorRef router, IActorRef self)
    {
        var permit = spec.Limit is { } limit ? new WorkerPermit(limit, telemetry.QueueName) : null;
        try
        {
            while (true)
            {
                var progress = run.Progress;
                var (completed, failed) = await RunItemsAsync(spec, telemetry, run, progress, permit).ConfigureAwait(false);
                if (run.IsStoppedForCrash)
                {
                    return; // the worker's crash report accounts for this run
                }

                run.OpenForHandOver();
                router.Tell(new ItemsFinished(progress.Sequence, completed, failed), self);
                var next = run.NextAsync();
                if (!next.IsCompleted)
                {
                    permit?.Release(); // idle: a worker waiting for its next run holds no permit
                }

                if (!await next.ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        finally
        {
            permit?.Release();
        }
    }

    /// <summary>
    /// Runs the items of the run in hand in order until they are done, one is cancelled, or the run is told to stop.
    /// A method of its own so that a parked task holds no reference to the items it has finished.
    /// </summary>
    private static async ValueTask<(int Completed, int Failed)> RunItemsAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, WorkerRun<T> run,
                                                                              RunProgress progress, WorkerPermit? permit)
    {
        var items = run.Items;
        var traces = ItemTraces.Of(items);
        int completed = 0, failed = 0;
        while (completed < items.Length && !run.ShouldStop)
        {
            var outcome = traces is null
                ? await ProcessAsync(spec, telemetry, items[completed], permit, run.Token).ConfigureAwait(false)
                : await ProcessTracedAsync(spec, telemetry, items[completed], traces[completed], permit, run.Token).ConfigureAwait(false);
            if (outcome == ItemOutcome.Cancelled)
            {
                break;
            }

            failed += outcome == ItemOutcome.Failed ? 1 : 0;
            completed++;
            progress.Report(completed, failed);
            permit?.AfterItem();
        }

        return (completed, failed);
    }

    /// <summary>
    /// Runs one item under its own consumer span, a child of the producer's context captured at the put, which is
    /// <see cref="Activity.Current"/> while the work runs (an async method, so the caller's current activity is back
    /// when it returns).
    /// </summary>
    private static async ValueTask<ItemOutcome> ProcessTracedAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, T item, ActivityContext parent,
                                                                WorkerPermit? permit, CancellationToken cancellationToken)
    {
        using var span = ItemTraces.StartProcessing(telemetry.ProcessSpanName, telemetry.MetricName, parent);
        var outcome = await ProcessAsync(spec, telemetry, item, permit, cancellationToken).ConfigureAwait(false);
        if (outcome != ItemOutcome.Succeeded)
        {
            span?.SetStatus(ActivityStatusCode.Error, outcome.ToString());
        }

        return outcome;
    }

    /// <summary>
    /// Runs one item under the worker's permit (if limited), taking it first unless the worker still holds it from the
    /// item before; never throws: every ending becomes an outcome.
    /// </summary>
    private static async ValueTask<ItemOutcome> ProcessAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, T item, WorkerPermit? permit,
                                                             CancellationToken cancellationToken)
    {
        try
        {
            if (permit is not null)
            {
                await permit.EnsureAsync(cancellationToken).ConfigureAwait(false);
            }

            // Two clock reads are a measurable share of a small item's cost, so only when someone records them.
            long? started = telemetry.RecordsProcessingTime ? Stopwatch.GetTimestamp() : null;
            await spec.Work(item, cancellationToken).ConfigureAwait(false);
            if (started is { } since)
            {
                telemetry.RecordProcessingTime(Stopwatch.GetElapsedTime(since));
            }
            return ItemOutcome.Succeeded;
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            return ItemOutcome.Cancelled;
        }
        catch (Exception exception)
        {
            await telemetry.ReportFailureAsync(spec.ErrorHandler, exception, item, cancellationToken).ConfigureAwait(false);
            return ItemOutcome.Failed;
        }
    }
}
