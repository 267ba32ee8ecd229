using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// A work queue's own count of worker calls against its own limiter's <see cref="IConcurrencyLimiter.MaxRunning"/>,
/// kept beside the gatekeeper so that a queue whose limit covers its workers asks no actor per item. Every generation
/// of the queue's workers shares it, so workers being replaced and their successors stay under one cap together.
/// </summary>
/// <remarks>
/// <para>The cap is read at each entry, so a <c>Resize</c> of the limiter holds from the next entry on; a shrink takes
/// no slot back (holders see <see cref="ShouldLetGo"/> after their item and let go), as the gatekeeper does.</para>
/// <para>Writers and readers: <c>_held</c> and <c>_waiting</c> are changed only with interlocked operations by the
/// queue's worker tasks. <c>_freed</c> is installed by a waiter (compare-and-swap) before it looks at <c>_held</c>
/// again, and taken by a leaver (exchange) after it lowered <c>_held</c>: both sides fence, so either the waiter sees
/// the slot come free or the leaver sees the waiter's signal (Dekker). Waiters are the queue's own workers, which are
/// interchangeable: a freed slot wakes them all and one wins; no caller outside the queue ever waits here.</para>
/// </remarks>
[DebuggerDisplay("{Held} held of {Capacity}, {Waiting} waiting")]
internal sealed class QueueSlots(IConcurrencyLimiter limiter)
{
    /// <summary>Worker calls (held across a worker's run) counted now.</summary>
    private int _held;

    /// <summary>Workers waiting for a slot.</summary>
    private int _waiting;

    /// <summary>Completed when a slot comes free while someone waits; replaced by the next waiter.</summary>
    private TaskCompletionSource? _freed;

    /// <summary>How many slots there are: the limiter's permits, as of now.</summary>
    public int Capacity => limiter.MaxRunning;

    /// <summary>Slots held now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Workers waiting for a slot now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Whether a holder should let go after its item: someone waits, or a shrink left more held than there are.</summary>
    public bool ShouldLetGo => Volatile.Read(ref _waiting) > 0 || Volatile.Read(ref _held) > limiter.MaxRunning;

    /// <summary>Takes a slot: at once when one is free and nobody waits, else after waiting for one.</summary>
    public ValueTask EnterAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _waiting) == 0 && TryEnter() ? default : WaitAsync(cancellationToken);

    /// <summary>Gives a slot back and wakes the waiters, if any.</summary>
    public void Exit()
    {
        var held = Interlocked.Decrement(ref _held);
        Debug.Assert(held >= 0, "a slot was given back that was not held");
        if (Volatile.Read(ref _freed) is not null)
        {
            Interlocked.Exchange(ref _freed, null)?.TrySetResult();
        }
    }

    private bool TryEnter()
    {
        var held = Volatile.Read(ref _held);
        while (held < limiter.MaxRunning)
        {
            var seen = Interlocked.CompareExchange(ref _held, held + 1, held);
            if (seen == held)
            {
                return true;
            }

            held = seen;
        }

        return false;
    }

    private async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            while (true)
            {
                var freed = Volatile.Read(ref _freed);
                if (freed is null)
                {
                    var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    freed = Interlocked.CompareExchange(ref _freed, fresh, null) ?? fresh;
                }

                if (TryEnter())
                {
                    return;
                }

                await freed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }
}
