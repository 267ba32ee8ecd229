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
/// waiting) and then reads the gate's word again; the start that brings the count to 0 takes the waiter and completes
/// it. Both steps of each side are interlocked, so either the batch's second read finds 0, or the last start finds its
/// waiter. The waiting batch's take is one CAS on the word that also holds the batches' count, so a batch refused for
/// another that ran never holds the gate, even briefly.
/// </remarks>
internal sealed class WorkerGate
{
    /// <summary>The low half's value while a batch owns the workers.</summary>
    private const uint Owned = uint.MaxValue;

    /// <summary>
    /// One word, so that a batch's take and its check that no other batch took the workers meanwhile are one step: the
    /// high half counts the batches that have taken the workers (the epoch), the low half is <see cref="Owned"/> while a
    /// batch owns them, else how many worker starts are being sent right now. Before, the epoch was a field of its own, and
    /// a waiting batch took the workers, then saw the epoch had moved and gave them back: a start in between was refused
    /// as if a batch ran (round 39, second reading).
    /// </summary>
    private long _state;

    /// <summary>Completed by the start that leaves no other being sent; published by a batch waiting for it (once, for every batch waiting).</summary>
    private TaskCompletionSource? _startsSent;

    /// <summary>Whether a batch owns the workers.</summary>
    public bool BatchOwns => Low(Interlocked.Read(ref _state)) == Owned;

    /// <summary>Whether nothing holds the gate: no batch owns the workers and no worker start is being sent.</summary>
    public bool IsFree => Low(Interlocked.Read(ref _state)) == 0;

    /// <summary>Counts a worker start being sent: <c>false</c> (nothing counted) while a batch owns the workers.</summary>
    public bool TryEnterStart()
    {
        var state = Interlocked.Read(ref _state);
        while (Low(state) != Owned)
        {
            AssertStartsCountable(state);
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
        AssertStartLeft(left);
        if (Low(left) == 0)
        {
            Interlocked.Exchange(ref _startsSent, null)?.TrySetResult();
        }
    }

    /// <summary>
    /// Takes the workers for a batch: <c>true</c> once taken, after the worker starts being sent when it came have been
    /// sent; <c>false</c> (nothing taken) when another batch owns them, or took them while this one waited: batches
    /// called together get one run and the others refused, whether or not a start was being sent as they came.
    /// </summary>
    /// <param name="cancellationToken">Ends the wait for the starts being sent: then nothing is taken and
    /// <see cref="OperationCanceledException"/> is thrown. Before, the wait ignored it (round 39, second reading).</param>
    public ValueTask<bool> TryBeginBatchAsync(CancellationToken cancellationToken = default)
    {
        var state = Interlocked.Read(ref _state);
        while (Low(state) == 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, Take(state), state);
            if (seen == state)
            {
                return ValueTask.FromResult(true);
            }

            state = seen;
        }

        return Low(state) == Owned ? ValueTask.FromResult(false) : AwaitStartsThenBeginAsync(Epoch(state), cancellationToken);
    }

    /// <summary>Gives the workers back once a batch has ended (whatever it ended with).</summary>
    public void EndBatch()
    {
        var state = Interlocked.Read(ref _state);
        AssertBatchOwns();
        // Nothing else changes the word while a batch owns it: a start is refused, a batch's take needs 0 starts.
        var seen = Interlocked.CompareExchange(ref _state, state & ~(long)Owned, state);
        Debug.Assert(seen == state, "the gate changed while a batch owned the workers");
    }

    /// <summary>Asserts that a batch owns the workers (a batch's own start, its end).</summary>
    [Conditional("DEBUG")]
    public void AssertBatchOwns() => Debug.Assert(BatchOwns, "a batch acted on workers it did not own");

    [Conditional("DEBUG")]
    private static void AssertStartsCountable(long state) => Debug.Assert(Low(state) < Owned - 1, "worker starts being sent overflowed the gate's count");

    [Conditional("DEBUG")]
    private static void AssertStartLeft(long left) => Debug.Assert(Low(left) < Owned, "a worker start left a gate it had not entered (or one a batch owned)");

    private async ValueTask<bool> AwaitStartsThenBeginAsync(uint epoch, CancellationToken cancellationToken)
    {
        while (true)
        {
            // The waiter first, then the word again: a start that leaves 0 after it takes this waiter.
            var sent = Volatile.Read(ref _startsSent) ?? Publish();
            var state = Interlocked.Read(ref _state);
            while (Epoch(state) == epoch && Low(state) == 0)
            {
                // One step: taken only if no other batch took the workers since this one came.
                var seen = Interlocked.CompareExchange(ref _state, Take(state), state);
                if (seen == state)
                {
                    return true;
                }

                state = seen;
            }

            if (Epoch(state) != epoch)
            {
                return false; // another batch took the workers while this one waited (it may own them still, or have ended)
            }

            // Continuations run on the pool: never on the thread of the start that completes it. A cancellation ends the
            // wait with nothing taken (the waiter stays, for the other batches waiting or the next).
            await sent.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The word once a batch has taken the workers from <paramref name="state"/> (no start being sent): owned, the epoch counted.</summary>
    private static long Take(long state) => unchecked((long)((ulong)(Epoch(state) + 1u) << 32) | Owned);

    private static uint Epoch(long state) => (uint)((ulong)state >> 32);

    private static uint Low(long state) => (uint)state;

    /// <summary>Publishes a waiter for the starts being sent, or returns the one another batch published first.</summary>
    private TaskCompletionSource Publish()
    {
        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref _startsSent, fresh, null) ?? fresh;
    }
}
