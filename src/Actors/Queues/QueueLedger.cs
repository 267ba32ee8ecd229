using System.Diagnostics;
using ActorQueue.Telemetry;

namespace ActorQueue.Actors;

/// <summary>
/// The router's buffer and its counts: where every accepted item is, so that at any moment
/// <c>Enqueued == Processed + Drained + Discarded + Size + InFlight</c>. Every change keeps that equation, checked by
/// <see cref="AssertInvariants"/> after each one, and is reported to the meter along with the count. Only the router
/// actor touches it.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{Size} queued, {InFlight} in flight, {Metrics}")]
internal sealed class QueueLedger<T>
{
    /// <summary>Accepted items not yet taken, oldest first.</summary>
    private readonly ItemDeque<T> _buffer;

    /// <summary>The queue's metric tag.</summary>
    private readonly KeyValuePair<string, object?> _tag;

    /// <summary>Mirrors the buffer's depth onto the depth instrument.</summary>
    private readonly UpDownPublisher _depth;

    /// <summary>Items accepted (put, in a batch, or through the inbox).</summary>
    private long _enqueued;

    /// <summary>Items finished, successfully or not.</summary>
    private long _processed;

    /// <summary>Items finished with an error (a subset of <see cref="_processed"/>).</summary>
    private long _errors;

    /// <summary>Puts that gave up waiting for space.</summary>
    private long _backpressure;

    /// <summary>Items handed back by a drain.</summary>
    private long _drained;

    /// <summary>Items still queued, or still with a getter, when the router went (disposed, or its actor system ended; reported as failed).</summary>
    private long _discarded;

    /// <summary>Items with workers now.</summary>
    private int _workerInFlight;

    /// <summary>
    /// Items taken by <c>GetAsync</c> callers and not yet marked done, oldest first: kept so that, once the router is gone
    /// and no <c>TaskDone</c> can reach it, each is still accounted for (<see cref="DiscardTaken"/>).
    /// </summary>
    /// <remarks>Made with the first get: a queue its workers alone take from pays nothing for it.</remarks>
    private ItemDeque<T>? _taken;

    /// <summary>How many items <c>GetAsync</c> callers hold (taken, not yet marked done).</summary>
    public int HeldByGetters => _taken?.Count ?? 0;

    /// <summary>Where a metrics listener that throws is reported; <c>null</c> to let it through (tests).</summary>
    private readonly ListenerFailureLog? _failures;

    public QueueLedger(int capacity, KeyValuePair<string, object?> tag, ListenerFailureLog? failures = null)
    {
        _failures = failures;
        _buffer = new ItemDeque<T>(Math.Min(capacity, 1024));
        _tag = tag;
        _depth = new UpDownPublisher(ActorQueueTelemetry.QueueDepthCounter, tag, failures);
    }

    /// <summary>Items waiting in the buffer.</summary>
    public int Size => _buffer.Count;

    /// <summary>Items with workers now (the stop log names them).</summary>
    public int WorkerInFlight => _workerInFlight;

    /// <summary>Accepted items not finished: in the buffer, with workers, or with getters.</summary>
    public int Unfinished => _buffer.Count + _workerInFlight + HeldByGetters;

    public QueueMetrics Metrics => new(_enqueued, _processed, _errors, _backpressure)
    {
        Drained = _drained,
        Discarded = _discarded,
        InFlight = _workerInFlight + HeldByGetters,
    };

    /// <summary>
    /// Adds an accepted item at the back. The meter hears of it through <see cref="Confirm"/> once the put is
    /// answered, so a put withdrawn at that instant (<see cref="Withdraw"/>) is never reported.
    /// </summary>
    public void Add(T item, ActivityContext trace = default)
    {
        _buffer.PushBack(item, trace);
        _enqueued++;
        AssertInvariants();
    }

    /// <summary>Reports <paramref name="count"/> items added and kept to the meter.</summary>
    public void Confirm(int count) => _failures.Add(ActorQueueTelemetry.QueueEnqueuedCounter, count, _tag);

    /// <summary>Takes back the item just added: its put was withdrawn before it could be answered.</summary>
    public void Withdraw()
    {
        _buffer.PopBack();
        _enqueued--;
        AssertInvariants();
    }

    /// <summary>Hands the oldest item to a <c>GetAsync</c> caller; it is in flight until <see cref="GetterDone"/>.</summary>
    public T TakeForGetter(out ActivityContext trace)
    {
        var item = _buffer.PopFront(out trace);
        (_taken ??= new ItemDeque<T>(4)).PushBack(item);
        AssertInvariants();
        return item;
    }

    /// <summary>The getter had gone (cancelled) when the item reached it: the item goes back to the head.</summary>
    public void ReturnFromGetter(T item, ActivityContext trace)
    {
        _taken!.PopBack(); // the item just taken (TakeForGetter)
        _buffer.PushFront(item, trace);
        AssertInvariants();
    }

    /// <summary>One item taken by a getter is done; <c>false</c> (and nothing changes) when none is outstanding.</summary>
    public bool GetterDone()
    {
        if (HeldByGetters == 0)
        {
            return false;
        }

        _taken!.PopFront(); // TaskDone names no item: the oldest is done
        _processed++;
        _failures.Add(ActorQueueTelemetry.QueueProcessedCounter, 1, _tag);
        AssertInvariants();
        return true;
    }

    /// <summary>Takes the <paramref name="count"/> oldest items as one worker run; they are in flight until <see cref="SettleRun(T[], int, int, int)"/>.</summary>
    public T[] TakeRun(int count)
    {
        var items = new T[count];
        ActivityContext[]? traces = null;
        for (var i = 0; i < items.Length; i++)
        {
            items[i] = _buffer.PopFront(out var trace);
            if (trace != default)
            {
                (traces ??= new ActivityContext[count])[i] = trace;
            }
        }

        if (traces is not null)
        {
            ItemTraces.Attach(items, traces);
        }

        _workerInFlight += items.Length;
        AssertInvariants();
        return items;
    }

    /// <summary>
    /// Accounts for a worker run that ended: its first <paramref name="completed"/> items finished
    /// (<paramref name="failed"/> of them with an error), the next <paramref name="lost"/> (0 or 1) were lost to a
    /// crash and count as errors, and the rest go back to the head of the queue in their order.
    /// </summary>
    public void SettleRun(T[] items, int completed, int failed, int lost)
    {
        _workerInFlight -= items.Length;
        CountFinished(completed + lost, failed + lost);
        var traces = ItemTraces.Of(items);
        for (var i = items.Length - 1; i >= completed + lost; i--)
        {
            _buffer.PushFront(items[i], traces?[i] ?? default);
        }

        AssertInvariants();
    }

    /// <inheritdoc cref="SettleRun(T[], int, int, int)"/>
    public void SettleRun(in RunSettlement<T> run) => SettleRun(run.Items, run.Completed, run.Failed, run.Lost);

    /// <summary>A put gave up waiting for space.</summary>
    public void CountBackpressure()
    {
        _backpressure++;
        _failures.Add(ActorQueueTelemetry.QueueBackpressureCounter, 1, _tag);
    }

    /// <summary>Hands back every queued item, oldest first; they count as drained.</summary>
    public List<T> DrainAll()
    {
        var items = _buffer.PopAll();
        _drained += items.Count;
        AssertInvariants();
        return items;
    }

    /// <summary>Takes every item still queued out as discarded: the queue is being disposed, and each is reported as failed.</summary>
    public List<T> DiscardAll()
    {
        var items = _buffer.PopAll();
        _discarded += items.Count;
        AssertInvariants();
        return items;
    }

    /// <summary>
    /// Takes every item still with a <c>GetAsync</c> caller out as discarded: the router is gone (disposed, or its actor
    /// system ended), so no <c>TaskDone</c> can count it any more, and each is reported as failed.
    /// </summary>
    public List<T> DiscardTaken()
    {
        var items = _taken?.PopAll() ?? [];
        _discarded += items.Count;
        AssertInvariants();
        return items;
    }

    /// <summary>Reports the change in depth since the last report to the depth instrument.</summary>
    public void ReportDepth() => _depth.Publish(_buffer.Count);

    /// <summary>The router is gone: the depth it reported no longer counts.</summary>
    public void WithdrawDepth() => _depth.Publish(0);

    /// <summary>Which of the ledger's invariants is broken, or <c>null</c> when all hold (tests check this in any build).</summary>
    public string? BrokenInvariant()
    {
        var inFlight = _workerInFlight + HeldByGetters;
        if (_enqueued != _processed + _drained + _discarded + _buffer.Count + inFlight)
        {
            return $"Enqueued {_enqueued} != Processed {_processed} + Drained {_drained} + Discarded {_discarded} + Size {_buffer.Count} + InFlight {inFlight}";
        }

        if (_workerInFlight < 0)
        {
            return $"negative in flight: {_workerInFlight} with workers, {HeldByGetters} with getters";
        }

        return _errors > _processed ? $"Errors {_errors} > Processed {_processed}" : null;
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        var broken = BrokenInvariant();
        Debug.Assert(broken is null, broken);
    }

    private void CountFinished(int finished, int failed)
    {
        _processed += finished;
        _failures.Add(ActorQueueTelemetry.QueueProcessedCounter, finished, _tag);
        if (failed > 0)
        {
            _errors += failed;
            _failures.Add(ActorQueueTelemetry.QueueErrorsCounter, failed, _tag);
        }
    }
}
