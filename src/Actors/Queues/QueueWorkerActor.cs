using System.Diagnostics;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One worker of a queue router. It pulls: it asks the router for an item when it starts, and each finished item
/// (reported by the run straight to the router, with this worker as sender) frees it for the next, so its mailbox
/// never fills. The item runs as a task off the actor's thread; the actor only starts it and cancels it on a stop
/// timeout. Retiring is the router's call: it stops a worker once the worker holds no item.
/// </summary>
internal sealed class QueueWorkerActor<T> : ReceiveActor
{
    private readonly WorkerSpec<T> _spec;
    private readonly QueueTelemetry _telemetry;

    /// <summary>Cancels the latest run on a stop timeout or a crash.</summary>
    private CancellationTokenSource? _cancellation;

    /// <summary>The latest run's sequence number, reported if this incarnation crashes.</summary>
    private long _sequence = -1;

    public QueueWorkerActor(WorkerSpec<T> spec, QueueTelemetry telemetry)
    {
        _spec = spec;
        _telemetry = telemetry;
        Receive<WorkItem<T>>(HandleWorkItem);
        Receive<CancelWork>(_ => _cancellation?.Cancel());
        Receive<CrashForTest>(crash => throw crash.Cause);
    }

    public static Props Props(WorkerSpec<T> spec, QueueTelemetry telemetry) =>
        Akka.Actor.Props.Create(() => new QueueWorkerActor<T>(spec, telemetry));

    /// <inheritdoc />
    protected override void PreStart() => Context.Parent.Tell(RequestWork.Instance);

    /// <inheritdoc />
    protected override void PreRestart(Exception reason, object message)
    {
        // Tell the router first: cancelling may run the run's continuation inline, and its "cancelled" report must
        // reach the router after the crash so the router sees it as stale and reports the item as failed.
        Context.Parent.Tell(new WorkerCrashed(reason, _sequence));
        _cancellation?.Cancel();
        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _cancellation?.Cancel();
        base.PostStop();
    }

    private void HandleWorkItem(WorkItem<T> work)
    {
        // A finished run's source is simply replaced: cancelling it later is harmless, so it is never disposed early.
        _cancellation = new CancellationTokenSource();
        _sequence = work.Sequence;
        var token = _cancellation.Token;
        var spec = _spec;
        var telemetry = _telemetry;
        var router = Context.Parent;
        var self = Self;
        _ = Task.Run(async () =>
        {
            var outcome = await ProcessAsync(spec, telemetry, work.Item, token).ConfigureAwait(false);
            router.Tell(new ItemFinished(outcome, work.Sequence), self);
        }, CancellationToken.None);
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

}

/// <summary>Test hook: makes a worker throw from its message handler, as a bug in the worker would, to exercise supervision.</summary>
internal sealed record CrashForTest(Exception Cause);
