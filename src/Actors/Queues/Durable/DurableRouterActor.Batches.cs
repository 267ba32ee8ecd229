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
                if (batch.Trace != default)
                {
                    _traces[accepted.Id] = batch.Trace; // each item runs under its producer's context, as a single put's (it was dropped)
                }

                WriteLater(accepted,
                    apply: () =>
                    {
                        _batchWrites--;
                        _book.Accepted(accepted, item, hasItem: true);
                    },
                    answer: batch.Admitted < payloads.Length ? null : () => batch.Completion.TrySetResult(true),
                    refused: error =>
                    {
                        // Not in the queue: the batch fails (its caller reads how many items are) and admits no more.
                        _batchWrites--;
                        _traces.Remove(accepted.Id);
                        batch.Admitted--;
                        if (_waitingBatches.TryPeek(out var head) && head.Batch == batch)
                        {
                            _waitingBatches.Dequeue();
                        }

                        batch.Completion.TrySetException(error);
                    });
            }

            if (batch.Admitted < payloads.Length)
            {
                return;
            }

            _waitingBatches.Dequeue();
        }
    }
}
