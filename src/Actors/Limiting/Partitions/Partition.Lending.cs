using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The partition's loan (<see cref="PartitionLoan"/>) between turns: reclaimed at the start of every turn, so the count is
/// exact before anything reads it, and lent at the end of a turn while nobody waits.
/// </summary>
internal sealed partial class Partition
{
    /// <summary>
    /// Start of every message for the partition, and of its sweep: shuts the loan and counts what nobody claimed as free,
    /// so that the count is exact (claims included) before anything reads it.
    /// </summary>
    public void Reclaim()
    {
        AssertTaken();
        if (!Loan.Reclaim(out var back))
        {
            return;
        }

        // Claimers and returners metered their own changes on their threads (as the plain limiter's do): what they hold
        // net is running already, so the publication below meters only what the partition itself changes.
        _running += (int)(Loan.LentAtReclaim - back);

        if (_gate is null)
        {
            // Normally nobody waits in a partition that had lent; should a caller have queued behind permits that were
            // only lent, nothing else would ever hand them on to it.
            _held -= back;
            GrantLeanOrPublish();
            return;
        }

        // Through the gate, which hands them on in order: normally nobody waits in a partition that had lent, but should a
        // caller have queued behind permits that were only lent, nothing else would ever release them to it.
        if (back > 0)
        {
            _gate.Release(new PermitDemand((int)back));
        }
        else
        {
            Publish(_gate.Snapshot); // what callers claimed from the loan is held now: the running count must say so
        }
    }

    /// <summary>
    /// End of every turn that nothing was pushed to: lends its free permits, only while nobody waits, it has no rates,
    /// and its loan is shut (not still open from before, not closed by a drop). The counts stay published without the loan.
    /// </summary>
    public void Lend()
    {
        AssertTaken();
        if (_rates is not null || !Loan.IsShut || _fifo.Count != 0 || _gate is { Waiting: > 0 } or { IsOpen: false })
        {
            return;
        }

        var held = _pool?.InUse ?? _held;
        Debug.Assert(held == _running, "The count is published before the loan.");
        var free = _shared.Settings.MaxRunning - held;
        if (free <= 0)
        {
            return;
        }

        TakeForLoan(free);
        if (!Loan.Lend(free))
        {
            TakeForLoan(-free);
        }
    }

    /// <summary>Takes <paramref name="permits"/> out of the count for the loan (negative: puts them back), unpublished.</summary>
    private void TakeForLoan(long permits)
    {
        if (_pool is null)
        {
            _held += permits;
        }
        else if (permits > 0)
        {
            _pool.Take(permits, TimeSpan.Zero);
        }
        else
        {
            _pool.Release(-permits, TimeSpan.Zero);
        }
    }
}
