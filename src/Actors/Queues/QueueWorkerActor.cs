using System.Diagnostics;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One worker of a queue router. It pulls: it asks the router for work when it starts, and each finished run
/// (reported by the run straight to the router, with this worker as sender) frees it for the next, so its mailbox
/// never fills. A run is one item, or several in order when the backlog is long; it runs as a task off the actor's
/// thread, and the actor only starts it and cancels it (stop timeout, crash, stop). Retiring is the router's call:
/// it tells the run to yield and stops the worker once the worker holds no item.
/// </summary>
internal sealed class QueueWorkerActor<T> : ReceiveActor
{
    private readonly WorkerSpec<T> _spec;
    private readonly QueueTelemetry _telemetry;

    /// <summary>The latest run's task, cancelled on a stop timeout or a crash and reported if this incarnation crashes.</summary>
    private WorkerRun<T>? _run;

    public QueueWorkerActor(WorkerSpec<T> spec, QueueTelemetry telemetry)
    {
        _spec = spec;
        _telemetry = telemetry;
        Receive<WorkerRun<T>>(HandleRun);
        Receive<CancelWork>(_ => _run?.Cancel());
    }

    public static Props Props(WorkerSpec<T> spec, QueueTelemetry telemetry) =>
        Akka.Actor.Props.Create(() => new QueueWorkerActor<T>(spec, telemetry));

    /// <inheritdoc />
    protected override void PreStart() => Context.Parent.Tell(RequestWork.Instance);

    /// <inheritdoc />
    protected override void PreRestart(Exception reason, object message)
    {
        // Stop the task (it reports nothing more, and the item in hand is cancelled) before telling the router: by
        // the time the router reports the item in hand as an error, its token is cancelled.
        var progress = _run?.StopForCrash() ?? new RunProgress(-1);
        var (completed, failed) = progress.Counts;
        Context.Parent.Tell(new WorkerCrashed(reason, progress.Sequence, completed, failed));
        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _run?.Cancel();
        base.PostStop();
    }

    /// <summary>The router sends a run when no task of this worker waits for one: start a task for it.</summary>
    private void HandleRun(WorkerRun<T> run)
    {
        _run = run;
        var spec = _spec;
        var telemetry = _telemetry;
        var router = Context.Parent;
        var self = Self;
        _ = Task.Run(() => RunAsync(spec, telemetry, run, router, self), CancellationToken.None);
    }

    /// <summary>
    /// Works through each run the router gives this task, reports it, and goes on with the next run the router hands
    /// over (at once, or after parking), until the worker stops.
    /// </summary>
    private static async Task RunAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, WorkerRun<T> run, IActorRef router, IActorRef self)
    {
        do
        {
            var progress = run.Progress;
            var (completed, failed) = await RunItemsAsync(spec, telemetry, run, progress).ConfigureAwait(false);
            if (run.IsStoppedForCrash)
            {
                return; // the worker's crash report accounts for this run
            }

            run.OpenForHandOver();
            router.Tell(new ItemsFinished(progress.Sequence, completed, failed), self);
        }
        while (await run.NextAsync().ConfigureAwait(false));
    }

    /// <summary>
    /// Runs the items of the run in hand in order until they are done, one is cancelled, or the run is told to stop.
    /// A method of its own so that a parked task holds no reference to the items it has finished.
    /// </summary>
    private static async ValueTask<(int Completed, int Failed)> RunItemsAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, WorkerRun<T> run, RunProgress progress)
    {
        var items = run.Items;
        int completed = 0, failed = 0;
        while (completed < items.Length && !run.ShouldStop)
        {
            var outcome = await ProcessAsync(spec, telemetry, items[completed], run.Token).ConfigureAwait(false);
            if (outcome == ItemOutcome.Cancelled)
            {
                break;
            }

            failed += outcome == ItemOutcome.Failed ? 1 : 0;
            completed++;
            progress.Report(completed, failed);
        }

        return (completed, failed);
    }

    /// <summary>Runs one item under the limiter (if any); never throws: every ending becomes an outcome.</summary>
    private static async ValueTask<ItemOutcome> ProcessAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, T item, CancellationToken cancellationToken)
    {
        ConcurrencyLease? lease = null;
        try
        {
            if (spec.Limiter is { } limiter)
            {
                lease = await limiter.AcquireAsync(telemetry.QueueName, cancellationToken).ConfigureAwait(false);
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
            await telemetry.ReportFailureAsync(spec.ErrorHandler, exception, item).ConfigureAwait(false);
            return ItemOutcome.Failed;
        }
        finally
        {
            lease?.Dispose();
        }
    }
}
