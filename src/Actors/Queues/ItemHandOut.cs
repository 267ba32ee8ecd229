using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// How items leave the buffer, on the router's side: to waiting getters first, then to free workers as runs of their
/// share of the backlog; and how what comes back from a worker (a report, a crash, its end) is settled in the ledger.
/// The router sends the runs and stops the workers it is told to; the hand-out never touches an actor, so it is tested
/// without one. Only the router actor calls it.
/// </summary>
/// <typeparam name="TWorker">How a worker is named (its actor ref in the router).</typeparam>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{_gets.Count} getters waiting")]
internal sealed class ItemHandOut<TWorker, T> where TWorker : notnull
{
    private readonly QueueLedger<T> _ledger;

    /// <summary>Publishes the router's counts; called before a getter is answered, so its caller finds its item counted.</summary>
    private readonly Action _publish;

    /// <summary>Sends a run to a worker whose task has ended, for the worker actor to start a new task.</summary>
    private readonly Action<TWorker, WorkerRun<T>> _send;

    /// <summary><c>GetAsync</c> callers waiting for an item, oldest first.</summary>
    private readonly WaiterQueue<GetRequest<T>> _gets = new();

    public ItemHandOut(QueueLedger<T> ledger, WorkerPool<TWorker, T> pool, Action publish, Action<TWorker, WorkerRun<T>> send)
    {
        _ledger = ledger;
        Pool = pool;
        _publish = publish;
        _send = send;
    }

    /// <summary>The workers the items go to.</summary>
    public WorkerPool<TWorker, T> Pool { get; }

    /// <summary>Whether a getter or a free worker would take an item now.</summary>
    public bool AnyTaker => !_gets.IsEmpty || Pool.HasIdleWorker();

    /// <summary>A getter waits for the next item; <c>false</c> when its caller has already withdrawn it.</summary>
    public bool AddGetter(GetRequest<T> get)
    {
        if (get.Completion.Task.IsCompleted)
        {
            return false;
        }

        _gets.Enqueue(get);
        return true;
    }

    /// <summary>A getter's caller withdrew it.</summary>
    public void RemoveGetter(GetRequest<T> get) => _gets.Remove(get);

    /// <summary>Every waiting getter fails with <paramref name="error"/> (a stop, the router's end).</summary>
    public void RefuseGetters(Exception error)
    {
        while (_gets.Dequeue() is { } get)
        {
            get.Completion.TrySetException(error);
        }
    }

    /// <summary>
    /// Hands the oldest queued item to the oldest waiting getter, or else the oldest items to the longest-free worker as
    /// one run of its share of the backlog; <c>false</c> when nothing is queued or nobody would take it.
    /// </summary>
    public bool TryHandOutOne()
    {
        if (_ledger.Size == 0)
        {
            return false;
        }

        if (_gets.Dequeue() is { } get)
        {
            var item = _ledger.TakeForGetter(out var trace);
            _publish();
            get.ItemTrace = trace;
            if (!get.Completion.TrySetResult(item))
            {
                _ledger.ReturnFromGetter(item, trace);
            }

            return true;
        }

        if (!Pool.TryTakeIdle(out var worker, out var slot))
        {
            return false;
        }

        if (Pool.Give(slot, _ledger.TakeRun(Pool.ShareOf(_ledger.Size))) is { } run)
        {
            _send(worker, run); // its task has ended: the actor starts a new one
        }

        return true;
    }

    /// <summary>
    /// A worker reports a run finished: settles it, if the worker still holds it under that number (<c>false</c>
    /// otherwise). The worker is free again, or, retiring, to be stopped now (<paramref name="stop"/>).
    /// </summary>
    public bool Finished(TWorker worker, ItemsFinished report, out bool stop)
    {
        var run = Pool.Finished(worker, report.Sequence, report.Completed, report.Failed, out stop);
        if (!run.Settles)
        {
            return false;
        }

        _ledger.SettleRun(run);
        return true;
    }

    /// <summary>A worker's failing incarnation reports its run: settles it with the item in hand lost (see <see cref="WorkerPool{TWorker, T}.Crashed"/>).</summary>
    public RunSettlement<T> Crashed(TWorker worker, WorkerCrashed report)
    {
        var run = Pool.Crashed(worker, report.Sequence, report.Completed, report.Failed);
        if (run.Settles)
        {
            _ledger.SettleRun(run);
        }

        return run;
    }

    /// <summary>
    /// The router stops with runs still held, whose reports will never come (the actor system terminating): what the
    /// tasks had finished counts as processed, and the rest goes back to the head, to be discarded with the items queued.
    /// </summary>
    public void AbandonRuns()
    {
        foreach (var run in Pool.TakeAllRuns())
        {
            _ledger.SettleRun(run);
        }
    }

    /// <summary>A worker is gone: what it held goes back to the head; <c>false</c> when it was not in the pool.</summary>
    public bool Gone(TWorker worker)
    {
        if (!Pool.Remove(worker, out var held))
        {
            return false;
        }

        if (held.Settles)
        {
            _ledger.SettleRun(held);
        }

        return true;
    }
}
