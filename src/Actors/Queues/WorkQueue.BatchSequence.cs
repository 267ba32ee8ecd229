using System.Runtime.ExceptionServices;

namespace ActorQueue.Actors;

/// <content>A batch's sequence: read in chunks of at most the queue's capacity, each put as one message, the enumerator always disposed.</content>
public sealed partial class WorkQueue<T>
{
    /// <summary>
    /// Puts the batch in chunks of at most the queue's capacity: one message per chunk, and never more than one chunk
    /// read ahead of the queue, so a lazy sequence is consumed only as space frees up.
    /// </summary>
    /// <param name="items">The batch.</param>
    /// <param name="notQueued">Filled, when a stop or a disposal refuses a chunk, with its items not admitted before the refusal (which is rethrown).</param>
    /// <param name="sequenceFaults">
    /// Gets the sequence's exceptions: its <c>GetEnumerator</c>'s or <c>MoveNext</c>'s (which end it: every item it gave
    /// before is put, as they are in no other place), then its enumerator's <c>Dispose</c>'s. The enumerator is disposed
    /// however the reading ends, as <c>foreach</c> does, and its exception never replaces the one that ends the batch.
    /// </param>
    /// <param name="cancellationToken">Checked before each item is read: once cancelled, the items of the chunk not put go to <paramref name="notQueued"/>.</param>
    private async Task PutAllAsync(IEnumerable<T> items, List<T> notQueued, List<ExceptionDispatchInfo> sequenceFaults, CancellationToken cancellationToken)
    {
        var chunkSize = Math.Min(Queue.Capacity, MaxBatchChunk);
        var chunk = new List<T>(chunkSize);
        IEnumerator<T> sequence;
        try
        {
            sequence = items.GetEnumerator();
        }
        catch (Exception error)
        {
            // As a sequence that fails at its first item: nothing to put, the queue stops, and its exception is thrown.
            // Before, it went out of the batch at once, leaving the queue processing with the batch's workers (review h180).
            sequenceFaults.Add(ExceptionDispatchInfo.Capture(error));
            return;
        }

        try
        {
            while (true)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    // No further item is read once cancelled (a sequence may be lazy, costly or consuming): the items of the
                    // chunk not put yet are in no queue, and are handed back as a refused chunk's are.
                    notQueued.AddRange(chunk);
                    cancellationToken.ThrowIfCancellationRequested();
                }

                var (more, fault) = Advance(sequence);
                if (!more)
                {
                    if (fault is not null)
                    {
                        sequenceFaults.Add(fault);
                    }

                    break;
                }

                chunk.Add(sequence.Current);
                if (chunk.Count == chunkSize)
                {
                    await PutChunkAsync(chunk, notQueued).ConfigureAwait(false);
                    chunk = new List<T>(chunkSize);
                }
            }
        }
        finally
        {
            // Its Dispose failing is the sequence's failure too: before, it went out of the batch at once and left the
            // queue processing the last chunk with the batch's workers (review h180); and when the batch was ending with
            // another exception (a refused chunk, a cancellation), it replaced that one, or, after a failed MoveNext, the
            // enumerator was not disposed at all (round 39).
            Close(sequence, sequenceFaults);
        }

        if (chunk.Count > 0)
        {
            await PutChunkAsync(chunk, notQueued).ConfigureAwait(false);
        }
    }

    /// <summary>Disposes <paramref name="sequence"/>: the exception its <c>Dispose</c> threw, if any, goes to <paramref name="sequenceFaults"/>.</summary>
    private static void Close(IEnumerator<T> sequence, List<ExceptionDispatchInfo> sequenceFaults)
    {
        try
        {
            sequence.Dispose();
        }
        catch (Exception error)
        {
            sequenceFaults.Add(ExceptionDispatchInfo.Capture(error));
        }
    }

    /// <summary>Moves <paramref name="sequence"/> on: whether it gave an item, or the exception it failed with instead (which ends it).</summary>
    private static (bool More, ExceptionDispatchInfo? Fault) Advance(IEnumerator<T> sequence)
    {
        try
        {
            return (sequence.MoveNext(), null);
        }
        catch (Exception error)
        {
            return (false, ExceptionDispatchInfo.Capture(error));
        }
    }

    /// <summary>
    /// Puts one chunk; on a refusal, whatever its reason (the queue's state, its disposal, a durable queue's journal or
    /// serialiser), the items the router had not admitted (its count, written before the refusal completed the put) go to
    /// <paramref name="notQueued"/>: read from the caller's sequence, they are in no other place.
    /// </summary>
    private async Task PutChunkAsync(List<T> chunk, List<T> notQueued)
    {
        var batch = new BatchPut<T>(chunk) { Trace = ItemTraces.Capture() };
        try
        {
            await Queue.PutBatchAsync(batch).ConfigureAwait(false);
        }
        catch
        {
            notQueued.AddRange(chunk.Skip(batch.Admitted));
            throw;
        }
    }
}
