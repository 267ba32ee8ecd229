using System.Diagnostics;
using System.Text.Json;

namespace ActorQueue.Actors;

/// <summary>The durable router's batch puts (<c>WorkQueue.BatchProcessAsync</c>'s chunks): admitted item by item as space frees.</summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>Batches waiting for space for their next items, oldest first, each with its items' bytes.</summary>
    private readonly Queue<(BatchPut<T> Batch, byte[][] Payloads)> _waitingBatches = new();

    /// <summary>Items of batches admitted and being written: they take space as the puts in <c>_writing</c> do.</summary>
    private int _batchWrites;

    /// <summary>
    /// The batch of each item admitted and not yet written, by the item's id: a batch refused withdraws its items still
    /// in the outbox (<see cref="WithdrawUnwritten"/>), so those in the queue are always its first
    /// <see cref="BatchPut{T}.Admitted"/> ones, which is how its caller tells the items to hand back.
    /// </summary>
    private readonly Dictionary<long, BatchPut<T>> _batchUnwritten = [];

    /// <summary>
    /// Batches refused while some of their admitted items were being written, each with its refusal: one is answered once
    /// the last of those items is written or refused (<see cref="ItemLeftUnwritten"/>). Answered at once, as a stop did,
    /// a write that the journal then rejected took items back off an <see cref="BatchPut{T}.Admitted"/> its caller had
    /// already read: the items were neither queued nor handed back.
    /// </summary>
    private readonly Dictionary<BatchPut<T>, Func<Exception>> _refusedBatches = [];

    /// <summary>
    /// A batch waits for space as single puts do, its items admitted in order as space frees (<see cref="AdmitBatches"/>),
    /// and is answered once its last item is written. Before, every item was journaled at once, past the capacity, so
    /// <c>BatchProcessAsync</c> read and journaled its whole sequence ahead of the workers.
    /// </summary>
    private void AddBatch(BatchPut<T> batch)
    {
        if (batch.Items.Count == 0)
        {
            batch.Completion.TrySetResult(true);
            return;
        }

        byte[][] payloads;
        try
        {
            payloads = [.. batch.Items.Select(item => JsonSerializer.SerializeToUtf8Bytes(item))];
        }
        catch (Exception error)
        {
            // As for a single put: whatever the serialiser throws means the items cannot be stored.
            batch.Completion.TrySetException(new ArgumentException(
                $"The items cannot be stored: System.Text.Json cannot serialise {typeof(T).FullName}: {UserText.MessageOf(error)}", "items", error));
            return;
        }

        _waitingBatches.Enqueue((batch, payloads));
        Pump();
    }

    /// <summary>Admits the items of the waiting batches into free space, oldest batch first; each is journaled as a put.</summary>
    private void AdmitBatches()
    {
        while (_waitingBatches.TryPeek(out var waiting) && HasSpace())
        {
            var (batch, payloads) = waiting;
            while (HasSpace() && batch.Admitted < payloads.Length)
            {
                var index = batch.Admitted++;
                var (accepted, item) = (new ItemAccepted(_book.ReserveId(), 0, 0, payloads[index]), batch.Items[index]);
                _batchWrites++;
                batch.Unwritten++;
                _batchUnwritten[accepted.Id] = batch;
                if (batch.Trace != default)
                {
                    _traces[accepted.Id] = batch.Trace; // each item runs under its producer's context, as a single put's (it was dropped)
                }

                WriteLater(accepted,
                    apply: () =>
                    {
                        _batchWrites--;
                        _batchUnwritten.Remove(accepted.Id);
                        _book.Accepted(accepted, item, hasItem: true);
                        ItemLeftUnwritten(batch);
                    },
                    answer: batch.Admitted < payloads.Length ? null : () => batch.Completion.TrySetResult(true),
                    refused: error =>
                    {
                        if (!_batchUnwritten.ContainsKey(accepted.Id))
                        {
                            return; // withdrawn already, with the batch's refusal
                        }

                        // Not in the queue: the batch fails (its caller reads how many items are) and admits no more; its
                        // items admitted after this one, still in the outbox, are withdrawn: written, they would be in the
                        // queue while its caller, reading Admitted, took them for not queued, and this one for queued.
                        // The write's error says more than a stop's refusal (whether the item may have been stored).
                        _refusedBatches[batch] = () => error;
                        if (_waitingBatches.TryPeek(out var head) && head.Batch == batch)
                        {
                            _waitingBatches.Dequeue();
                        }

                        Unadmit(accepted.Id);
                        WithdrawUnwritten(batch);
                    });
            }

            if (batch.Admitted < payloads.Length)
            {
                return;
            }

            _waitingBatches.Dequeue();
        }
    }

    /// <summary>
    /// Takes back the admission of the batch item <paramref name="id"/>, not written: <c>false</c> when it was not
    /// waiting for its write (written, or taken back already).
    /// </summary>
    private bool Unadmit(long id)
    {
        if (!_batchUnwritten.Remove(id, out var batch))
        {
            return false;
        }

        _batchWrites--;
        _traces.Remove(id);
        batch.Admitted--;
        ItemLeftUnwritten(batch);
        return true;
    }

    /// <summary>
    /// Refuses a batch that no longer waits for space: at once when none of its admitted items waits for its write, else
    /// once the last of them is written or refused (its <see cref="BatchPut{T}.Admitted"/> is final only then).
    /// </summary>
    private void RefuseBatch(BatchPut<T> batch, Func<Exception> refusal)
    {
        if (batch.Unwritten == 0)
        {
            batch.Completion.TrySetException(refusal());
            return;
        }

        _refusedBatches.TryAdd(batch, refusal);
    }

    /// <summary>One admitted item of <paramref name="batch"/> is written, or taken back: a refused batch whose last one it was is answered.</summary>
    private void ItemLeftUnwritten(BatchPut<T> batch)
    {
        batch.Unwritten--;
        Debug.Assert(batch.Unwritten >= 0, "a batch item left the unwritten ones twice");
        if (batch.Unwritten == 0 && _refusedBatches.Remove(batch, out var refusal))
        {
            batch.Completion.TrySetException(refusal());
        }
    }

    /// <summary>Withdraws from the outbox the items of <paramref name="batch"/> not written yet: nothing of them is journaled.</summary>
    private void WithdrawUnwritten(BatchPut<T> batch)
    {
        var withdrawn = _outbox.RemoveAll(outgoing => outgoing.Message is ItemAccepted accepted
                                                      && _batchUnwritten.TryGetValue(accepted.Id, out var of) && of == batch && Unadmit(accepted.Id));
        _outboxPuts -= withdrawn;
        Debug.Assert(_outboxPuts >= 0, "more puts withdrawn from the outbox than it held");
    }
}
