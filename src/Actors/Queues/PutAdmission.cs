using System.Diagnostics;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// How items get into the queue, on the router's side: the credits granted to the facade and the credited items taken
/// in from the inbox, the puts waiting for space with their timers, and the batches admitted as space frees. It adds
/// items only through the ledger, and answers a put only after the router has published the counts with its item.
/// Only the router actor calls it.
/// </summary>
/// <remarks>
/// Space is shared three ways: the buffer, the places reserved for credited puts (<see cref="PutInbox{T}.Reserved"/>),
/// and what is left. Credits are granted only while no put or batch waits, so a waiting put is never overtaken by a
/// credited one; an actor's put or a stop takes the unused credits back.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{_puts.Count} puts and {_batches.Count} batches waiting, {_inbox.Reserved} reserved")]
internal sealed class PutAdmission<T>
{
    private readonly int _capacity;
    private readonly QueueLedger<T> _ledger;
    private readonly PutInbox<T> _inbox;
    private readonly ITimerScheduler _timers;
    private readonly QueueTelemetry _telemetry;

    /// <summary>Publishes the router's counts; called before a put is answered, so its caller finds its item counted.</summary>
    private readonly Action _publish;

    /// <summary>Puts waiting for space, oldest first; each with a timer unless it waits without limit.</summary>
    private readonly WaiterQueue<PendingPut<T>> _puts = new();

    /// <summary>Batches waiting for space, oldest first; the head may be partly admitted.</summary>
    private readonly Queue<BatchPut<T>> _batches = new();

    /// <summary>Batches fully admitted since they were last answered (after the counts are published).</summary>
    private readonly List<BatchPut<T>> _admittedBatches = [];

    public PutAdmission(int capacity, QueueLedger<T> ledger, PutInbox<T> inbox, ITimerScheduler timers, QueueTelemetry telemetry, Action publish)
    {
        _capacity = capacity;
        _ledger = ledger;
        _inbox = inbox;
        _timers = timers;
        _telemetry = telemetry;
        _publish = publish;
        // A restarted router starts with no credits out; items already put with old ones are still taken in.
        inbox.Revoke();
    }

    /// <summary>Whether a put or a batch waits for space.</summary>
    public bool AnyWaiting => !_puts.IsEmpty || _batches.Count > 0;

    /// <summary>
    /// A put while the queue processes: accepted at once when nothing waits ahead of it and there is space (returns
    /// <c>true</c>); otherwise it waits for space up to its timeout, or meets backpressure now if it may not wait.
    /// A put its caller has already withdrawn is dropped.
    /// </summary>
    public bool Offer(PendingPut<T> put)
    {
        if (put.IsAbandoned)
        {
            return false;
        }

        if (_puts.IsEmpty && HasSpace())
        {
            Accept(put);
            return true;
        }

        if (put.Timeout == TimeSpan.Zero)
        {
            Backpressure(put);
            _publish();
            return false;
        }

        _puts.Enqueue(put);
        if (put.Timeout != Timeout.InfiniteTimeSpan)
        {
            _timers.StartSingleTimer(put, new PutTimedOut<T>(put), put.Timeout);
        }

        return false;
    }

    /// <summary>A waiting put's timeout ran out: if it still waits, it meets backpressure.</summary>
    public void TimedOut(PendingPut<T> put)
    {
        if (_puts.Remove(put))
        {
            Backpressure(put);
            _publish();
        }
    }

    /// <summary>A waiting put was cancelled by its caller: it leaves the line, with its timer.</summary>
    public void Withdraw(PendingPut<T> put)
    {
        if (_puts.Remove(put))
        {
            _timers.Cancel(put);
        }
    }

    /// <summary>A batch joins the line; its items are admitted in order as space frees.</summary>
    public void AddBatch(BatchPut<T> batch) => _batches.Enqueue(batch);

    /// <summary>Admits waiting puts and then waiting batches into free space, oldest first.</summary>
    public void AdmitWaiting()
    {
        while (!_puts.IsEmpty && HasSpace() && _puts.Dequeue() is { } put)
        {
            _timers.Cancel(put);
            Accept(put);
        }

        while (_batches.TryPeek(out var batch) && HasSpace())
        {
            var before = batch.Admitted;
            while (_ledger.Size + _inbox.Reserved < _capacity && batch.Admitted < batch.Items.Count)
            {
                _ledger.Add(batch.Items[batch.Admitted++], batch.Trace);
            }

            _ledger.Confirm(batch.Admitted - before);
            if (batch.Admitted < batch.Items.Count)
            {
                return;
            }

            _admittedBatches.Add(_batches.Dequeue());
        }
    }

    /// <summary>Answers the batches admitted in full; the router calls it after publishing the counts.</summary>
    public void AnswerAdmittedBatches()
    {
        if (_admittedBatches.Count == 0)
        {
            return;
        }

        foreach (var batch in _admittedBatches)
        {
            batch.Completion.TrySetResult(true);
        }

        _admittedBatches.Clear();
    }

    /// <summary>Refuses every waiting put and batch: the queue is now <paramref name="status"/>.</summary>
    public void RefuseAll(QueueStatus status, bool cancelTimers)
    {
        var refusal = QueueErrors.CannotPut(status);
        while (_puts.Dequeue() is { } put)
        {
            if (cancelTimers)
            {
                _timers.Cancel(put);
            }

            put.Refused(status, refusal);
        }

        while (_batches.TryDequeue(out var batch))
        {
            batch.Completion.TrySetException(new QueueStateException(
                $"{refusal} ({batch.Admitted} of the batch's {batch.Items.Count} items were accepted)", status));
        }
    }

    /// <summary>Whether an item fits, besides the places reserved for credited puts; takes unused credits back when that makes room.</summary>
    public bool HasSpace()
    {
        if (_ledger.Size + _inbox.Reserved < _capacity)
        {
            return true;
        }

        _inbox.Revoke();
        return _ledger.Size + _inbox.Reserved < _capacity;
    }

    /// <summary>Takes every unused credit back (an actor's put needs the space, or the queue stops).</summary>
    public void RevokeCredits() => _inbox.Revoke();

    /// <summary>Grants the free space as credits, unless a put or batch waits for it (it must not be overtaken).</summary>
    public void GrantFreeSpace()
    {
        if (AnyWaiting)
        {
            return;
        }

        var free = _capacity - _ledger.Size - _inbox.Reserved;
        if (free > 0)
        {
            _inbox.Grant(free);
        }
    }

    /// <summary>Adds the credited puts that came in to the buffer, oldest first; <c>true</c> when there were any.</summary>
    public bool TakeInbox()
    {
        var taken = 0;
        while (_inbox.TryTake(out var item))
        {
            _ledger.Add(item);
            taken++;
        }

        if (taken == 0)
        {
            return false;
        }

        _ledger.Confirm(taken);
        _publish(); // before the items leave the inbox's count, so Size never misses them
        _inbox.Taken(taken);
        return true;
    }

    /// <summary>No free worker or getter could take an item now: puts need not tell the router (see <see cref="PutInbox{T}.WillLook"/>).</summary>
    public void WillLook() => _inbox.WillLook();

    /// <summary>From now on a put tells the router; takes in what came before that. <c>true</c> when items were taken in.</summary>
    public bool LookAgain() => _inbox.StopLooking() && TakeInbox();

    /// <summary>The router stops: no credits out any more, and what was put with them is taken in.</summary>
    public void Close()
    {
        _inbox.Revoke();
        _inbox.StopLooking();
        TakeInbox();
    }

    private void Accept(PendingPut<T> put)
    {
        // The counts are published before the answer, so a caller that reads Size after its put returns sees its
        // item; a put withdrawn at that instant is taken back out.
        _ledger.Add(put.Item, put.Trace);
        _publish();
        if (put.TryAccept())
        {
            _ledger.Confirm(1);
            return;
        }

        _ledger.Withdraw();
    }

    private void Backpressure(PendingPut<T> put)
    {
        _ledger.CountBackpressure();
        _telemetry.Backpressure(_capacity, put.Timeout);
        put.Full();
    }
}
