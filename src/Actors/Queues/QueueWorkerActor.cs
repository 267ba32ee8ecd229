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
        _ = Task.Run(() => WorkerTask<T>.RunAsync(spec, telemetry, run, router, self), CancellationToken.None);
    }
}
