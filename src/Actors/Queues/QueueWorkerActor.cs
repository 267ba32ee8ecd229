using System.Diagnostics;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One worker of a queue router. It pulls: it asks the router for an item whenever it is free, so its mailbox
/// never fills. The item runs as a task off the actor's thread; the actor only starts it, cancels it on a stop
/// timeout, and reports how it ended.
/// </summary>
internal sealed class QueueWorkerActor<T> : ReceiveActor
{
    private readonly WorkerSpec<T> _spec;
    private readonly QueueTelemetry _telemetry;

    /// <summary>Identifies the item run in progress; a report from an earlier incarnation's run does not match.</summary>
    private object? _run;

    /// <summary>Cancels the run in progress on a stop timeout.</summary>
    private CancellationTokenSource? _cancellation;

    /// <summary>Set once the router retired this worker: finish the current item, then stop.</summary>
    private bool _retiring;

    public QueueWorkerActor(WorkerSpec<T> spec, QueueTelemetry telemetry)
    {
        _spec = spec;
        _telemetry = telemetry;
        Receive<WorkItem<T>>(HandleWorkItem);
        Receive<RunFinished>(HandleRunFinished);
        Receive<CancelWork>(_ => _cancellation?.Cancel());
        Receive<Retire>(_ => HandleRetire());
        Receive<CrashForTest>(crash => throw crash.Cause);
    }

    public static Props Props(WorkerSpec<T> spec, QueueTelemetry telemetry) =>
        Akka.Actor.Props.Create(() => new QueueWorkerActor<T>(spec, telemetry));

    /// <inheritdoc />
    protected override void PreStart() => Context.Parent.Tell(RequestWork.Instance);

    /// <inheritdoc />
    protected override void PreRestart(Exception reason, object message)
    {
        // The item in flight is reported as failed by the router; this incarnation's run must not report again.
        _cancellation?.Cancel();
        if (_run is not null)
        {
            Context.Parent.Tell(new WorkerCrashed(reason));
        }

        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _cancellation?.Cancel();
        _cancellation?.Dispose();
        base.PostStop();
    }

    private void HandleWorkItem(WorkItem<T> work)
    {
        var run = new object();
        _run = run;
        _cancellation = new CancellationTokenSource();
        var token = _cancellation.Token;
        var spec = _spec;
        var telemetry = _telemetry;
        Task.Run(() => ProcessAsync(spec, telemetry, work.Item, token), CancellationToken.None)
            .PipeTo(Self, success: outcome => new RunFinished(run, outcome));
    }

    private void HandleRunFinished(RunFinished finished)
    {
        if (!ReferenceEquals(finished.Run, _run))
        {
            return;
        }

        _run = null;
        _cancellation?.Dispose();
        _cancellation = null;
        Context.Parent.Tell(new ItemFinished(finished.Outcome));
        if (_retiring)
        {
            Context.Stop(Self);
        }
    }

    private void HandleRetire()
    {
        _retiring = true;
        if (_run is null)
        {
            Context.Stop(Self);
        }
    }

    /// <summary>Runs one item under the limiter (if any); never throws: every ending becomes an outcome.</summary>
    private static async Task<ItemOutcome> ProcessAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, T item, CancellationToken cancellationToken)
    {
        ConcurrencyLease? lease = null;
        try
        {
            if (spec.Limiter is { } limiter)
            {
                lease = await limiter.AcquireAsync(telemetry.QueueName, cancellationToken).ConfigureAwait(false);
            }

            var started = Stopwatch.GetTimestamp();
            await spec.Work(item, cancellationToken).ConfigureAwait(false);
            telemetry.RecordProcessingTime(Stopwatch.GetElapsedTime(started));
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

    /// <summary>The run task's report to its own worker.</summary>
    private sealed record RunFinished(object Run, ItemOutcome Outcome);
}

/// <summary>Test hook: makes a worker throw from its message handler, as a bug in the worker would, to exercise supervision.</summary>
internal sealed record CrashForTest(Exception Cause);
