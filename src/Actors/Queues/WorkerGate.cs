using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// Who may replace a queue's workers: a <c>WorkQueue</c> batch, which owns them from its start to its end, or any number
/// of worker starts (<c>StartWorkersAsync</c>, <c>ProcessAsync</c>) being sent. A start is sent only while no batch owns
/// the workers, and a batch takes them only once no start is being sent, so no start sent during a batch reaches the
/// router after the batch's own (review h180). A batch that comes while starts are being sent waits (asynchronously) until
/// they have been sent, and then takes the workers, unless another batch took them meanwhile (then it is refused, as
/// batches called together are): before, it was refused, though a start sent before it conflicts with nothing (the
/// batch replaces the workers started before it) — round 39.
/// </summary>
/// <remarks>
/// Lock-free. A batch that finds starts being sent publishes a waiter (<see cref="_startsSent"/>, shared by every batch
/// waiting) and then tries again to take the workers; the start that brings the count to 0 takes the waiter and completes
/// it. Both steps of each side are interlocked, so either the batch's second try finds 0, or the last start finds its waiter.
/// </remarks>
internal sealed class WorkerGate
{
    /// <summary>-1 while a batch owns the workers; else how many worker starts are being sent right now.</summary>
    private int _state;

    /// <summary>How many batches have taken the workers: a batch that waited is refused when another took them meanwhile.</summary>
    private int _batchesBegun;

    /// <summary>Completed by the start that leaves no other being sent; published by a batch waiting for it (once, for every batch waiting).</summary>
    private TaskCompletionSource? _startsSent;

    /// <summary>Whether a batch owns the workers.</summary>
    public bool BatchOwns => Volatile.Read(ref _state) < 0;

    /// <summary>Counts a worker start being sent: <c>false</c> (nothing counted) while a batch owns the workers.</summary>
    public bool TryEnterStart()
    {
        var state = Volatile.Read(ref _state);
        while (state >= 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, state + 1, state);
            if (seen == state)
            {
                return true;
            }

            state = seen;
        }

        return false;
    }

    /// <summary>A start counted by <see cref="TryEnterStart"/> has been sent (or failed to): the last one lets a waiting batch go on.</summary>
    public void LeaveStart()
    {
        var left = Interlocked.Decrement(ref _state);
        Debug.Assert(left >= 0, "a worker start left a gate it had not entered");
        if (left == 0)
        {
            Interlocked.Exchange(ref _startsSent, null)?.TrySetResult();
        }
    }

    /// <summary>
    /// Takes the workers for a batch: <c>true</c> once taken, after the worker starts being sent when it came have been
    /// sent; <c>false</c> (nothing taken) when another batch owns them, or took them while this one waited: batches
    /// called together get one run and the others refused, whether or not a start was being sent as they came.
    /// </summary>
    public ValueTask<bool> TryBeginBatchAsync()
    {
        var begun = Volatile.Read(ref _batchesBegun);
        var previous = Interlocked.CompareExchange(ref _state, -1, 0);
        return previous > 0 ? AwaitStartsThenBeginAsync(begun) : ValueTask.FromResult(previous == 0 && Begun());
    }

    /// <summary>Gives the workers back once a batch has ended (whatever it ended with).</summary>
    public void EndBatch()
    {
        AssertBatchOwns();
        Volatile.Write(ref _state, 0);
    }

    /// <summary>Asserts that a batch owns the workers (a batch's own start, its end).</summary>
    [Conditional("DEBUG")]
    public void AssertBatchOwns() => Debug.Assert(BatchOwns, "a batch acted on workers it did not own");

    private async ValueTask<bool> AwaitStartsThenBeginAsync(int begun)
    {
        while (Volatile.Read(ref _batchesBegun) == begun)
        {
            // The waiter first, then the count again (the CAS): a start that leaves 0 after it takes this waiter.
            var sent = Volatile.Read(ref _startsSent) ?? Publish();
            var previous = Interlocked.CompareExchange(ref _state, -1, 0);
            if (previous == 0 && Volatile.Read(ref _batchesBegun) != begun)
            {
                // Another batch took the workers and gave them back between the check and the CAS: refused as it would have been.
                Volatile.Write(ref _state, 0);
                return false;
            }

            if (previous <= 0)
            {
                return previous == 0 && Begun();
            }

            // Continuations run on the pool: never on the thread of the start that completes it.
            await sent.Task.ConfigureAwait(false);
        }

        return false; // another batch took the workers while this one waited
    }

    /// <summary>Counts the batch that has just taken the workers (always <c>true</c>).</summary>
    private bool Begun()
    {
        Interlocked.Increment(ref _batchesBegun);
        return true;
    }

    /// <summary>Publishes a waiter for the starts being sent, or returns the one another batch published first.</summary>
    private TaskCompletionSource Publish()
    {
        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref _startsSent, fresh, null) ?? fresh;
    }
}
