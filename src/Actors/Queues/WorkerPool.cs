using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace ActorQueue.Actors;

/// <summary>
/// The router's books on its workers: which are free, in the order they became free; what each holds, under which run
/// sequence number; which retire; and what a report or a crash means for the items held. The router applies the
/// answers to the actors (start, stop, send a run); the pool never touches one, so it is tested without actors.
/// </summary>
/// <remarks>
/// Every run handed out gets the next sequence number. A report or crash report names the run it is about, and only
/// the run a worker still holds under that number is settled: a report from a crashed incarnation, or about a run
/// already handed back, settles nothing, so no item is counted twice.
/// </remarks>
/// <typeparam name="TWorker">How a worker is named (its actor ref in the router).</typeparam>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{Count} workers, {ActiveCount} active")]
internal sealed class WorkerPool<TWorker, T> where TWorker : notnull
{
    /// <summary>Every live worker and what it holds.</summary>
    private readonly Dictionary<TWorker, WorkerSlot<T>> _workers;

    /// <summary>Free workers, in the order they became free (entries for workers since busy, retiring or gone are skipped).</summary>
    private readonly Queue<TWorker> _idle = new();

    /// <summary>The last run sequence number handed out.</summary>
    private long _lastSequence;

    public WorkerPool(int workerBatch, IEqualityComparer<TWorker> comparer)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workerBatch, 1);
        WorkerBatch = workerBatch;
        _workers = new Dictionary<TWorker, WorkerSlot<T>>(comparer);
    }

    /// <summary>The most items one worker takes at once.</summary>
    public int WorkerBatch { get; }

    /// <summary>Live workers that take new items (not retiring).</summary>
    public int ActiveCount { get; private set; }

    /// <summary>Live workers, retiring ones included.</summary>
    public int Count => _workers.Count;

    /// <summary>A new worker: active, not free until it asks for work.</summary>
    public void Add(TWorker worker)
    {
        _workers.Add(worker, new WorkerSlot<T>());
        ActiveCount++;
    }

    /// <summary>A worker asks for work: it queues as free unless it retires or is gone; returns whether it is free now.</summary>
    public bool MarkIdle(TWorker worker)
    {
        if (!_workers.TryGetValue(worker, out var slot) || slot.Retiring)
        {
            return false;
        }

        MarkIdle(worker, slot);
        return true;
    }

    /// <summary>Whether a free worker waits for items (stale entries at the head of the idle queue are dropped).</summary>
    public bool HasIdleWorker()
    {
        while (_idle.TryPeek(out var worker))
        {
            if (_workers.TryGetValue(worker, out var slot) && slot.Idle && !slot.Retiring)
            {
                return true;
            }

            _idle.Dequeue();
        }

        return false;
    }

    /// <summary>Takes the worker that has been free longest; <c>false</c> when none is.</summary>
    public bool TryTakeIdle(out TWorker worker, out WorkerSlot<T> slot)
    {
        if (!HasIdleWorker())
        {
            worker = default!;
            slot = null!;
            return false;
        }

        worker = _idle.Dequeue();
        slot = _workers[worker];
        slot.Idle = false;
        return true;
    }

    /// <summary>How many of <paramref name="backlog"/> queued items a free worker takes now.</summary>
    public int ShareOf(int backlog) => BacklogShare.For(backlog, ActiveCount, WorkerBatch);

    /// <summary>
    /// Gives <paramref name="items"/> to a worker just taken as free, under the next sequence number. Returns
    /// <c>null</c> when the worker's task, which has reported its last run, took the run directly; otherwise the new
    /// run, which the router sends to the worker actor to start a task.
    /// </summary>
    public WorkerRun<T>? Give(WorkerSlot<T> slot, T[] items)
    {
        var sequence = ++_lastSequence;
        slot.Give(items, sequence);
        if (slot.Run?.TryHandOver(items, sequence) == true)
        {
            return null;
        }

        slot.Run = new WorkerRun<T>(items, sequence);
        return slot.Run;
    }

    /// <summary>
    /// A worker reports run <paramref name="sequence"/> finished: settles the items it held for that run, if it still
    /// does. The worker is free again unless it retires; then <paramref name="stop"/> says the router stops it now.
    /// </summary>
    public RunSettlement<T> Finished(TWorker worker, long sequence, int completed, int failed, out bool stop)
    {
        stop = false;
        if (!TryTakeRun(worker, sequence, out var slot, out var items))
        {
            return RunSettlement<T>.None; // a run of a crashed incarnation, already settled
        }

        if (slot.Retiring)
        {
            stop = true;
        }
        else
        {
            MarkIdle(worker, slot);
        }

        return new RunSettlement<T>(items, completed, failed, 0);
    }

    /// <summary>
    /// A worker's failing incarnation reports that it had finished <paramref name="completed"/> items of run
    /// <paramref name="sequence"/> (<paramref name="failed"/> with an error): the item it had in hand is lost to the
    /// crash, and the rest go back to the head.
    /// </summary>
    public RunSettlement<T> Crashed(TWorker worker, long sequence, int completed, int failed)
    {
        if (TryTakeRun(worker, sequence, out var slot, out var items))
        {
            return new RunSettlement<T>(items, completed, failed, completed < items.Length ? 1 : 0);
        }

        if (slot is { HasItems: true, Run.IsStoppedForCrash: true })
        {
            // The report names the run before the one handed over to the task just then (the run it holds is the one
            // the crash stopped): the task had not taken it, so it starts none of its items; they all go back to the
            // head. A run sent to the actor instead is a new one, which the restarted worker will start.
            return new RunSettlement<T>(slot.TakeItems(), 0, 0, 0);
        }

        return RunSettlement<T>.None;
    }

    /// <summary>
    /// A worker is gone (terminated); <c>false</c> when it was not in the pool. The items it held, if any, were not
    /// finished and go back to the head (<paramref name="held"/>).
    /// </summary>
    public bool Remove(TWorker worker, out RunSettlement<T> held)
    {
        if (!_workers.Remove(worker, out var slot))
        {
            held = RunSettlement<T>.None;
            return false;
        }

        if (!slot.Retiring)
        {
            ActiveCount--;
        }

        held = new RunSettlement<T>(slot.TakeItems(), 0, 0, 0);
        return true;
    }

    /// <summary>
    /// Retires every worker that does not retire yet: one holding items finishes the item in hand, hands back the rest
    /// and is stopped once it reports; one holding none is returned, for the router to stop now.
    /// </summary>
    public List<TWorker> RetireAll()
    {
        var stopNow = new List<TWorker>();
        foreach (var (worker, slot) in _workers)
        {
            if (slot.Retiring)
            {
                continue;
            }

            slot.Retiring = true;
            ActiveCount--;
            if (slot.HasItems)
            {
                slot.Run?.Yield();
            }
            else
            {
                stopNow.Add(worker);
            }
        }

        return stopNow;
    }

    /// <summary>
    /// The router stops with runs still held (the actor system terminating): takes every run out of the pool, each
    /// with what its task had finished of it (its report went to dead letters with the stopped worker). A run not yet
    /// taken by a task (sent, or handed over) has nothing finished. The worker actors have stopped by then, so no
    /// task starts another item; an item still in hand counts as not finished.
    /// </summary>
    public List<RunSettlement<T>> TakeAllRuns()
    {
        var runs = new List<RunSettlement<T>>();
        foreach (var slot in _workers.Values)
        {
            if (!slot.HasItems)
            {
                continue;
            }

            var progress = slot.Run?.Progress;
            var (completed, failed) = progress is not null && progress.Sequence == slot.Sequence ? progress.Counts : (0, 0);
            runs.Add(new RunSettlement<T>(slot.TakeItems(), completed, failed, 0));
        }

        return runs;
    }

    /// <summary>The workers holding items now (a stop timeout cancels their work).</summary>
    public List<TWorker> Busy()
    {
        var busy = new List<TWorker>();
        foreach (var (worker, slot) in _workers)
        {
            if (slot.HasItems)
            {
                busy.Add(worker);
            }
        }

        return busy;
    }

    private void MarkIdle(TWorker worker, WorkerSlot<T> slot)
    {
        if (!slot.Idle)
        {
            slot.Idle = true;
            _idle.Enqueue(worker);
        }
    }

    /// <summary>Takes the items <paramref name="worker"/> holds for run <paramref name="sequence"/>, if it still does.</summary>
    private bool TryTakeRun(TWorker worker, long sequence, [NotNullWhen(true)] out WorkerSlot<T>? slot, out T[] items)
    {
        if (!_workers.TryGetValue(worker, out slot) || !slot.HasItems || slot.Sequence != sequence)
        {
            items = [];
            return false;
        }

        items = slot.TakeItems();
        return true;
    }
}
