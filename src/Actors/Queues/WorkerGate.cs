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
/// waiting: each joins it, counted) and then reads the gate's word again; the start that brings the count to 0 takes the
/// waiter and completes it. Both steps of each side are interlocked, so either the batch's second read finds 0, or the
/// last start finds its waiter. The waiting batch's take is one CAS on the word that also holds the batches' count, so a
/// batch refused for another that ran never holds the gate, even briefly. A batch leaves the waiter however its wait
/// ends (taken, refused, cancelled); the last to leave closes it and withdraws it, and a closed waiter is never joined
/// again, so a waiter is withdrawn only once no batch waits on it (round 44).
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

    /// <summary>Completed by the start that leaves no other being sent; published by a batch waiting for it (once, for every batch
    /// waiting), and withdrawn by the last of them to leave it. Before, a batch cancelled while it waited left it published
    /// until the starts were sent, though no batch waited any more (round 44).</summary>
    private StartsWaiter? _startsSent;

    /// <summary>Whether a batch owns the workers.</summary>
    public bool BatchOwns => Low(Interlocked.Read(ref _state)) == Owned;

    /// <summary>For tests: whether a waiter for the starts being sent is published (a batch may be waiting on it).</summary>
    internal bool HasWaiter => Volatile.Read(ref _startsSent) is not null;

    /// <summary>For tests: run as a batch leaving the waiter has uncounted itself, the last, before it closes the waiter.</summary>
    internal Action? LastLeaving { get; set; }

    /// <summary>For tests: run as the last batch to leave the waiter has closed it, before it withdraws it.</summary>
    internal Action? ClosedLeaving { get; set; }

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
            Interlocked.Exchange(ref _startsSent, null)?.Sent.TrySetResult();
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
            var waiter = Join();
            try
            {
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
                // wait with nothing taken.
                await waiter.Sent.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // However the wait ends: the last batch to leave withdraws the waiter (a completed one is withdrawn already).
                Leave(waiter);
            }
        }
    }

    /// <summary>The word once a batch has taken the workers from <paramref name="state"/> (no start being sent): owned, the epoch counted.</summary>
    private static long Take(long state) => unchecked((long)((ulong)(Epoch(state) + 1u) << 32) | Owned);

    private static uint Epoch(long state) => (uint)((ulong)state >> 32);

    private static uint Low(long state) => (uint)state;

    /// <summary>Joins the published waiter for the starts being sent, or publishes one: counted until <see cref="Leave"/>.</summary>
    private StartsWaiter Join()
    {
        while (true)
        {
            var waiter = Volatile.Read(ref _startsSent);
            if (waiter is null)
            {
                var fresh = new StartsWaiter();
                waiter = Interlocked.CompareExchange(ref _startsSent, fresh, null) ?? fresh;
            }

            if (waiter.TryJoin())
            {
                return waiter;
            }

            // Closed by its last batch, which is withdrawing it: helps it, then publishes (or joins) another.
            Interlocked.CompareExchange(ref _startsSent, null, waiter);
        }
    }

    /// <summary>Leaves <paramref name="waiter"/>: the last batch to leave it closes it and withdraws it, if it is still published.</summary>
    private void Leave(StartsWaiter waiter)
    {
        if (waiter.LeaveAndClose(LastLeaving))
        {
            ClosedLeaving?.Invoke();
            Interlocked.CompareExchange(ref _startsSent, null, waiter);
        }
    }

    /// <summary>The waiter the batches waiting for the starts being sent share, with how many of them wait on it.</summary>
    private sealed class StartsWaiter
    {
        private const int Closed = -1;

        /// <summary>How many batches wait on it; <see cref="Closed"/> once the last one left (never joined again).</summary>
        private int _waiting;

        /// <summary>Completed by the start that leaves no other being sent.</summary>
        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Counts a batch waiting on it: <c>false</c> once closed.</summary>
        public bool TryJoin()
        {
            var waiting = Volatile.Read(ref _waiting);
            while (waiting != Closed)
            {
                var seen = Interlocked.CompareExchange(ref _waiting, waiting + 1, waiting);
                if (seen == waiting)
                {
                    return true;
                }

                waiting = seen;
            }

            return false;
        }

        /// <summary>Uncounts a batch: <c>true</c> when it was the last and closed the waiter (a batch joining meanwhile keeps it open).</summary>
        public bool LeaveAndClose(Action? lastLeaving = null)
        {
            var left = Interlocked.Decrement(ref _waiting);
            Debug.Assert(left >= 0, "a batch left a waiter it had not joined");
            if (left == 0)
            {
                lastLeaving?.Invoke();
            }

            return left == 0 && Interlocked.CompareExchange(ref _waiting, Closed, 0) == 0;
        }
    }
}
