using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>A facade command that the router answers by completing <see cref="Completion"/>; a command that reaches a stopped router fails with <see cref="ObjectDisposedException"/>.</summary>
internal abstract class QueueCommand<TResult> : IUndeliverableRequest
{
    public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public virtual void Undelivered() => Completion.TrySetException(QueueErrors.Disposed());
}

internal sealed class StartQueue : QueueCommand<bool>;

/// <summary>Stop the queue; with <see cref="Terminate"/> the router stops itself afterwards (dispose).</summary>
internal sealed class StopQueue(TimeSpan timeout, bool terminate) : QueueCommand<bool>
{
    public TimeSpan Timeout { get; } = timeout;

    public bool Terminate { get; } = terminate;

    /// <summary>A stop that reaches a router already gone has nothing left to do.</summary>
    public override void Undelivered() => Completion.TrySetResult(true);
}

internal sealed class JoinQueue : QueueCommand<bool>;

internal sealed class DrainQueue<T> : QueueCommand<IReadOnlyList<T>>;

internal sealed class StartWorkers<T>(WorkerSpec<T> spec) : QueueCommand<bool>
{
    public WorkerSpec<T> Spec { get; } = spec;
}

/// <summary>
/// A chunk of items from <c>BatchProcessAsync</c>: admitted in order as space frees, however long that takes, and
/// answered once every item is in the queue. One message per chunk instead of one round trip per item.
/// </summary>
internal sealed class BatchPut<T>(IReadOnlyList<T> items) : QueueCommand<bool>
{
    public IReadOnlyList<T> Items { get; } = items;

    /// <summary>The producer's trace context, the same for every item of the batch (<c>default</c> when untraced); see <see cref="ItemTraces"/>.</summary>
    public System.Diagnostics.ActivityContext Trace { get; init; }

    /// <summary>How many of the items are in the queue so far; once the batch is answered, its final count (the caller reads it then).</summary>
    public int Admitted { get; set; }

    /// <summary>The durable router's count of the admitted items not written yet: the batch is answered only once it is 0.</summary>
    public int Unwritten { get; set; }
}

/// <summary>One <c>TaskDone</c> from a facade caller that took an item with <c>GetAsync</c>.</summary>
internal sealed class TaskDoneSignal : IDeadLetterSuppression
{
    public static readonly TaskDoneSignal Instance = new();
}

/// <summary>A put waiting for space: from a facade or from an actor.</summary>
internal abstract class PendingPut<T>(T item) : WaiterNode<PendingPut<T>>
{
    public T Item { get; } = item;

    /// <summary>Higher runs first; items of one priority run in the order they were accepted.</summary>
    public int Priority { get; init; }

    /// <summary>The item must not be handed out before this time; <c>null</c> for at once.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>The producer's trace context (<c>default</c> when untraced); see <see cref="ItemTraces"/>.</summary>
    public System.Diagnostics.ActivityContext Trace { get; init; }

    /// <summary>How long the put may wait for space.</summary>
    public abstract TimeSpan Timeout { get; }

    /// <summary>Whether the caller has already gone (cancelled).</summary>
    public abstract bool IsAbandoned { get; }

    /// <summary>The item is in the queue; returns <c>false</c> when the caller had already cancelled (then it must not be added).</summary>
    public abstract bool TryAccept();

    /// <summary>No space within the timeout.</summary>
    public abstract void Full();

    /// <summary>The queue's status does not allow puts.</summary>
    public abstract void Refused(QueueStatus status, string reason);

    /// <summary>The item could not be stored (it does not serialise, or the journal refused it).</summary>
    public abstract void Failed(Exception error);
}

/// <summary>
/// A facade's put that went to the router (no credit); completes with <c>true</c> (accepted), <c>false</c>
/// (backpressure), or an exception. Its answer lets later puts use credits again (<see cref="PutInbox{T}.Routed"/>).
/// </summary>
internal sealed class FacadePut<T>(T item, TimeSpan timeout, IActorRef router, PutInbox<T> inbox) : PendingPut<T>(item), IUndeliverableRequest
{
    /// <summary>1 once the put is answered or cancelled.</summary>
    private int _answered;

    public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public override TimeSpan Timeout { get; } = timeout;

    /// <inheritdoc />
    public override bool IsAbandoned => Completion.Task.IsCompleted;

    /// <inheritdoc />
    public override bool TryAccept()
    {
        Answered();
        return Completion.TrySetResult(true);
    }

    /// <inheritdoc />
    public override void Full()
    {
        Answered();
        Completion.TrySetResult(false);
    }

    /// <inheritdoc />
    public override void Refused(QueueStatus status, string reason)
    {
        Answered();
        Completion.TrySetException(new QueueStateException(reason, status));
    }

    /// <inheritdoc />
    public override void Failed(Exception error)
    {
        Answered();
        Completion.TrySetException(error);
    }

    /// <summary>From the caller's cancellation callback: cancel first, then tell the router to drop the waiting put.</summary>
    public void Cancel(CancellationToken cancellationToken)
    {
        if (Completion.TrySetCanceled(cancellationToken))
        {
            Answered();
            router.Tell(new CancelPut<T>(this), ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    public void Undelivered()
    {
        Answered();
        Completion.TrySetException(QueueErrors.Disposed());
    }

    /// <summary>Lets later puts use credits again; once, whichever answer comes first (before the caller resumes).</summary>
    private void Answered()
    {
        if (Interlocked.Exchange(ref _answered, 1) == 0)
        {
            inbox.RoutedAnswered();
        }
    }
}

/// <summary>An actor's <see cref="QueueProtocol.Put"/>; answered with protocol messages.</summary>
internal sealed class ActorPut<T>(T item, TimeSpan timeout, IActorRef requester, long correlationId) : PendingPut<T>(item)
{
    /// <summary>The put <paramref name="message"/> asks for, or <c>null</c> when it is invalid (then <paramref name="sender"/> is told why).</summary>
    public static ActorPut<T>? From(QueueProtocol.Put message, IActorRef sender)
    {
        if (message.Item is not T item)
        {
            if (message.Item is not null || default(T) is not null)
            {
                sender.Tell(new QueueProtocol.RejectedInvalid(message.CorrelationId,
                    $"The item is a {message.Item?.GetType().FullName ?? "null"}; this queue takes {typeof(T).FullName}"));
                return null;
            }

            item = default!;
        }

        if (!Timeouts.TryNormalize(message.Timeout ?? TimeSpan.Zero, out var timeout))
        {
            sender.Tell(new QueueProtocol.RejectedInvalid(message.CorrelationId, Timeouts.Invalid("Timeout", timeout)));
            return null;
        }

        return new ActorPut<T>(item, timeout, sender, message.CorrelationId)
        {
            Priority = message.Priority,
            NotBefore = message.NotBefore,
            Trace = message.TraceContext,
        };
    }

    /// <inheritdoc />
    public override TimeSpan Timeout { get; } = timeout;

    /// <inheritdoc />
    public override bool IsAbandoned => false;

    /// <inheritdoc />
    public override bool TryAccept()
    {
        requester.Tell(new QueueProtocol.Accepted(correlationId));
        return true;
    }

    /// <inheritdoc />
    public override void Full() => requester.Tell(new QueueProtocol.RejectedFull(correlationId));

    /// <inheritdoc />
    public override void Refused(QueueStatus status, string reason) => requester.Tell(new QueueProtocol.RejectedState(correlationId, status, reason));

    /// <inheritdoc />
    public override void Failed(Exception error) => requester.Tell(new QueueProtocol.RejectedInvalid(correlationId, error.Message));
}

internal sealed record CancelPut<T>(FacadePut<T> Put) : IDeadLetterSuppression;

internal sealed record PutTimedOut<T>(PendingPut<T> Put);

/// <summary>A facade's <c>GetAsync</c> waiting for an item.</summary>
internal sealed class GetRequest<T>(IActorRef router) : WaiterNode<GetRequest<T>>, IUndeliverableRequest
{
    public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The trace context the item carries: written by the router before it completes <see cref="Completion"/>, read by the taker after.</summary>
    public System.Diagnostics.ActivityContext ItemTrace { get; set; }

    public void Cancel(CancellationToken cancellationToken)
    {
        if (Completion.TrySetCanceled(cancellationToken))
        {
            router.Tell(new CancelGet<T>(this), ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    public void Undelivered() => Completion.TrySetException(QueueErrors.Disposed());
}

internal sealed record CancelGet<T>(GetRequest<T> Get) : IDeadLetterSuppression;

/// <summary>The stop timeout ran out: cancel in-flight work.</summary>
internal sealed class StopTimedOut
{
    public static readonly StopTimedOut Instance = new();
}

/// <summary>A disposal waited its timeout after the grace period for workers that did not return: the router stops without them.</summary>
internal sealed class AbandonWorkers
{
    public static readonly AbandonWorkers Instance = new();
}

/// <summary>Time to log the queue's depth and counters (every <see cref="QueueConfig.CapacityRefreshTime"/>).</summary>
internal sealed class Heartbeat
{
    public static readonly Heartbeat Instance = new();
}

/// <summary>What a worker runs, how many workers there are, and what limits them.</summary>
internal sealed record WorkerSpec<T>(
    Func<T, CancellationToken, Task> Work,
    int Count,
    Func<Exception, T, Task>? ErrorHandler,
    IConcurrencyLimiter? Limiter)
{
    /// <summary>How the in-memory workers hold their limit across items (see <see cref="WorkerLimit"/>); <c>null</c> when unlimited.</summary>
    public WorkerLimit? Limit { get; init; }

    /// <summary>
    /// Whether <see cref="ErrorHandler"/> hears only an item's last try: set for the collector of a <c>WorkQueue</c> batch
    /// run without an error handler, which throws the items that finally failed. A durable queue's try that is retried is
    /// logged instead. A user's handler hears every failed try.
    /// </summary>
    public bool LastTryOnly { get; init; }
}

/// <summary>Worker → router: I am free, send me work.</summary>
internal sealed class RequestWork
{
    public static readonly RequestWork Instance = new();
}

/// <summary>How a worker's item ended.</summary>
internal enum ItemOutcome
{
    /// <summary>The worker function returned.</summary>
    Succeeded,

    /// <summary>The worker function threw; the error handler has run.</summary>
    Failed,

    /// <summary>The stop timeout cancelled the work: the item goes back to the head of the queue.</summary>
    Cancelled,
}

/// <summary>
/// A worker's run → router (sent with the worker as sender): the first <see cref="Completed"/> items of run
/// <see cref="Sequence"/> finished, <see cref="Failed"/> of them with an error; the rest (cancelled, or not started
/// because the worker was told to yield) go back to the head of the queue in order. The worker is free again, and
/// its task waits for the router to hand it the next run (<see cref="WorkerRun{T}.TryHandOver"/>).
/// </summary>
internal sealed record ItemsFinished(long Sequence, int Completed, int Failed);

/// <summary>Router → worker: cancel the work in hand (stop timeout); it goes back to the head of the queue.</summary>
internal sealed class CancelWork
{
    public static readonly CancelWork Instance = new();
}

/// <summary>
/// Worker → router, from the failing incarnation before its restart: of run <see cref="Sequence"/> (if still in
/// flight), the first <see cref="Completed"/> items had finished (<see cref="Failed"/> with an error), the next one
/// is lost to the crash (reported as an error), and the rest go back to the head of the queue.
/// </summary>
internal sealed record WorkerCrashed(Exception Cause, long Sequence, int Completed, int Failed);

/// <summary>The exceptions the queue facades throw, with their messages in one place.</summary>
internal static class QueueErrors
{
    public static ObjectDisposedException Disposed() => new("BoundedQueue", "The queue has been disposed.");

    public static string CannotPut(QueueStatus status) => $"Cannot put items when queue is {Describe(status)}";

    public static string CannotGet(QueueStatus status) => $"Cannot get items when queue is {Describe(status)}";

    /// <summary>A facade's put reached a router whose <paramref name="status"/> refuses puts; one already withdrawn is dropped.</summary>
    public static void Refuse<T>(FacadePut<T> put, QueueStatus status)
    {
        if (!put.IsAbandoned)
        {
            put.Refused(status, CannotPut(status));
        }
    }

    /// <summary>An actor's put reached a router whose <paramref name="status"/> refuses puts.</summary>
    public static void Refuse<T>(QueueProtocol.Put message, IActorRef sender, QueueStatus status) =>
        ActorPut<T>.From(message, sender)?.Refused(status, CannotPut(status));

    /// <summary>A batch reached a router whose <paramref name="status"/> refuses puts.</summary>
    public static void Refuse<T>(BatchPut<T> batch, QueueStatus status) =>
        batch.Completion.TrySetException(new QueueStateException(CannotPut(status), status));

    /// <summary>A get reached a router whose <paramref name="status"/> refuses gets.</summary>
    public static void Refuse<T>(GetRequest<T> get, QueueStatus status) =>
        get.Completion.TrySetException(new QueueStateException(CannotGet(status), status));

    /// <summary>A drain reached a router that is processing or stopping.</summary>
    public static void RefuseDrain<T>(DrainQueue<T> command, QueueStatus status) =>
        command.Completion.TrySetException(new QueueStateException($"Cannot drain a queue that is {Describe(status)}; stop it first", status));

    /// <summary>A start reached a stopping router.</summary>
    public static void RefuseStartWhileStopping(StartQueue start) =>
        start.Completion.TrySetException(new QueueStateException("Cannot start a queue while it is stopping; await StopAsync first", QueueStatus.Stopping));

    /// <summary>New workers reached a router whose stop waits for its last workers to go (which new ones would hold for ever).</summary>
    public static void RefuseWorkersWhileStopping<T>(StartWorkers<T> start) =>
        start.Completion.TrySetException(new QueueStateException("Cannot start workers while the queue is stopping; await StopAsync first", QueueStatus.Stopping));

    public static string Describe(QueueStatus status) => status switch
    {
        QueueStatus.Idle => "idle",
        QueueStatus.Processing => "processing",
        QueueStatus.Stopping => "stopping",
        _ => "stopped",
    };
}
