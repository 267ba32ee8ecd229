using System.Threading.Tasks.Sources;
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

    /// <summary>How many of the items are in the queue so far.</summary>
    public int Admitted { get; set; }
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
}

/// <summary>A facade's put; completes with <c>true</c> (accepted), <c>false</c> (backpressure), or an exception.</summary>
internal sealed class FacadePut<T>(T item, TimeSpan timeout, IActorRef router) : PendingPut<T>(item), IUndeliverableRequest
{
    public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public override TimeSpan Timeout { get; } = timeout;

    /// <inheritdoc />
    public override bool IsAbandoned => Completion.Task.IsCompleted;

    /// <inheritdoc />
    public override bool TryAccept() => Completion.TrySetResult(true);

    /// <inheritdoc />
    public override void Full() => Completion.TrySetResult(false);

    /// <inheritdoc />
    public override void Refused(QueueStatus status, string reason) => Completion.TrySetException(new QueueStateException(reason, status));

    /// <summary>From the caller's cancellation callback: cancel first, then tell the router to drop the waiting put.</summary>
    public void Cancel(CancellationToken cancellationToken)
    {
        if (Completion.TrySetCanceled(cancellationToken))
        {
            router.Tell(new CancelPut<T>(this), ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    public void Undelivered() => Completion.TrySetException(QueueErrors.Disposed());
}

/// <summary>An actor's <see cref="QueueProtocol.Put"/>; answered with protocol messages.</summary>
internal sealed class ActorPut<T>(T item, TimeSpan timeout, IActorRef requester, long correlationId) : PendingPut<T>(item)
{
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
}

internal sealed record CancelPut<T>(FacadePut<T> Put) : IDeadLetterSuppression;

internal sealed record PutTimedOut<T>(PendingPut<T> Put);

/// <summary>A facade's <c>GetAsync</c> waiting for an item.</summary>
internal sealed class GetRequest<T>(IActorRef router) : WaiterNode<GetRequest<T>>, IUndeliverableRequest
{
    public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
    IConcurrencyLimiter? Limiter);

/// <summary>
/// A run for a worker: these items, in order; <see cref="Sequence"/> tags the run so a stale report is recognised.
/// The router hands it to the worker's waiting task, or sends the worker a new <see cref="WorkerRun{T}"/> with it. A free worker gets one item, or several when the backlog is long (its share, up to the
/// <c>actorqueue.queue.worker-batch</c> setting), so a busy queue pays one hand-over per several items.
/// </summary>
internal sealed record WorkItems<T>(T[] Items, long Sequence);

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
/// its task waits in <see cref="Run"/> for the router to hand it the next items directly.
/// </summary>
internal sealed record ItemsFinished(long Sequence, int Completed, int Failed, IWorkerHandOver Run);

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

/// <summary>The router's side of a worker's task that has just reported: it may take the next items without a message.</summary>
internal interface IWorkerHandOver
{
    /// <summary>
    /// Gives the next run to the reporting task if it still waits for one; otherwise (it has gone, or is stopping)
    /// returns <c>false</c> and the router sends the items to the worker actor instead.
    /// </summary>
    bool TryHandOver(object work);

    /// <summary>
    /// Router: the worker retires; its task finishes the item in hand, starts no further item and hands back the
    /// rest. Only sets a flag, so the router calls it directly: the flag is set before the router answers the stop.
    /// </summary>
    void Yield();
}

/// <summary>What a worker's task has finished of one run: written as one value, so a crash report reads it whole.</summary>
internal sealed class RunProgress(long sequence)
{
    /// <summary>Items finished (high 32 bits) and failed among them (low 32 bits).</summary>
    private long _counts;

    public long Sequence { get; } = sequence;

    public (int Completed, int Failed) Counts
    {
        get
        {
            var counts = Volatile.Read(ref _counts);
            return ((int)(counts >> 32), (int)counts);
        }
    }

    public void Report(int completed, int failed) => Volatile.Write(ref _counts, ((long)completed << 32) | (uint)failed);
}

/// <summary>
/// A worker's task, shared by the worker actor and the router: the actor asks it to yield or cancels it, the task
/// publishes its progress for a crash report, and after each report the task waits for the router to hand it the
/// next run directly.
/// </summary>
/// <remarks>
/// After reporting, the task either finds the next run already handed over and goes on on its own thread, or
/// parks (no thread is held) until the router hands one over, which resumes it through the thread pool, or until
/// the worker stops. Hand-over, parking and closing race from different threads and are settled by
/// compare-and-swap on one state. The router still decides what every worker holds; when it cannot hand over (the
/// task has ended), it sends the run to the worker actor, which starts a new task.
/// </remarks>
internal sealed class WorkerRun<T> : IWorkerHandOver, IValueTaskSource<bool>
{
    private const int Working = 0;
    private const int Reporting = 1;
    private const int Parked = 2;
    private const int HandedOver = 3;
    private const int Ended = 4;

    private readonly CancellationTokenSource _cancellation = new();

    /// <summary>Completes a parked task: <c>true</c> when a run was handed over, <c>false</c> when the worker stops.</summary>
    private ManualResetValueTaskSourceCore<bool> _park = new() { RunContinuationsAsynchronously = true };

    private RunProgress _progress;
    private WorkItems<T>? _next;
    private int _state;
    private volatile bool _yield;

    /// <summary>1 once the worker actor crashed: no further item starts.</summary>
    private int _crashed;

    public WorkerRun(WorkItems<T> work)
    {
        Items = work.Items;
        _progress = new RunProgress(work.Sequence);
    }

    /// <summary>The items of the run in hand.</summary>
    public T[] Items { get; private set; }

    public CancellationToken Token => _cancellation.Token;

    /// <summary>What the task has finished of the run in hand.</summary>
    public RunProgress Progress => Volatile.Read(ref _progress);

    /// <summary>Whether the task should start no further item (and take no further run).</summary>
    public bool ShouldStop => _yield || Volatile.Read(ref _crashed) != 0 || _cancellation.IsCancellationRequested;

    /// <inheritdoc />
    public void Yield() => _yield = true;

    /// <summary>Whether the worker actor crashed: the task reports nothing more, the crash report accounts for the run.</summary>
    public bool IsStoppedForCrash => Volatile.Read(ref _crashed) != 0;

    /// <summary>
    /// The worker actor crashed: no further item starts, a parked task ends, and the progress returned is the run the
    /// task works on (both sides write with a full fence, so a task that takes a new run after this read sees the
    /// stop first).
    /// </summary>
    public RunProgress StopForCrash()
    {
        Interlocked.Exchange(ref _crashed, 1);
        var progress = Volatile.Read(ref _progress);
        Close();
        return progress;
    }

    /// <summary>
    /// Cancels the item in hand and ends a parked task (stop timeout, worker stopped). A finished run's source is
    /// never disposed early: cancelling it later is harmless.
    /// </summary>
    public void Cancel()
    {
        _cancellation.Cancel();
        Close();
    }

    /// <summary>Task: about to report (the finished items are let go); from now on the router may hand over.</summary>
    public void OpenForHandOver()
    {
        Items = [];
        Volatile.Write(ref _state, Reporting);
    }

    /// <summary>
    /// Task: after reporting, the next run: <c>true</c> at once if the router handed one over meanwhile, else
    /// <c>true</c> later when it does, or <c>false</c> when the worker stops. A run taken while stopping is reported
    /// straight back with nothing done, so it returns to the queue.
    /// </summary>
    public ValueTask<bool> NextAsync()
    {
        _park.Reset();
        switch (Interlocked.CompareExchange(ref _state, Parked, Reporting))
        {
            case Reporting:
                return new ValueTask<bool>(this, _park.Version);
            case HandedOver:
                TakeNext();
                return new ValueTask<bool>(true);
            default:
                return new ValueTask<bool>(false);
        }
    }

    /// <inheritdoc />
    public bool TryHandOver(object work)
    {
        while (!ShouldStop)
        {
            var state = Volatile.Read(ref _state);
            if (state is not (Reporting or Parked))
            {
                return false;
            }

            _next = (WorkItems<T>)work;
            if (Interlocked.CompareExchange(ref _state, HandedOver, state) == state)
            {
                if (state == Parked)
                {
                    _park.SetResult(true);
                }

                return true;
            }

            _next = null;
        }

        return false;
    }

    /// <inheritdoc />
    public bool GetResult(short token)
    {
        var handedOver = _park.GetResult(token);
        if (handedOver)
        {
            TakeNext();
        }

        return handedOver;
    }

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _park.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _park.OnCompleted(continuation, state, token, flags);

    /// <summary>Ends a parked task, or one about to park: the router can no longer hand over.</summary>
    private void Close()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state is not (Reporting or Parked))
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _state, Ended, state) == state)
            {
                if (state == Parked)
                {
                    _park.SetResult(false);
                }

                return;
            }
        }
    }

    private void TakeNext()
    {
        var next = _next!;
        _next = null;
        Items = next.Items;
        Interlocked.Exchange(ref _progress, new RunProgress(next.Sequence));
        Volatile.Write(ref _state, Working);
    }
}

/// <summary>The exceptions the queue facades throw, with their messages in one place.</summary>
internal static class QueueErrors
{
    public static ObjectDisposedException Disposed() => new("BoundedQueue", "The queue has been disposed.");

    public static string CannotPut(QueueStatus status) => $"Cannot put items when queue is {Describe(status)}";

    public static string CannotGet(QueueStatus status) => $"Cannot get items when queue is {Describe(status)}";

    public static string Describe(QueueStatus status) => status switch
    {
        QueueStatus.Idle => "idle",
        QueueStatus.Processing => "processing",
        QueueStatus.Stopping => "stopping",
        _ => "stopped",
    };
}
