namespace ActorQueue.Actors;

/// <summary>The partition's idleness: the sweep's turn (idle? dropped?), the shedding of a gate nobody needs, and the mark every op leaves.</summary>
internal sealed partial class Partition
{
    /// <inheritdoc />
    /// <remarks>
    /// Takes the partition's turn (whose start reclaims the loan: a permit claimed since the last turn makes it busy); a
    /// partition whose turn someone else holds is busy. Idle, it keeps the turn for <see cref="Swept"/>.
    /// </remarks>
    public bool SweepIsIdle()
    {
        if (!TryTake())
        {
            return false;
        }

        bool idle;
        try
        {
            idle = IsIdle();
        }
        catch (Exception error)
        {
            Faulted(null, error);
            idle = false;
        }

        if (idle)
        {
            return true;
        }

        GiveBack();
        return false;
    }

    /// <inheritdoc />
    public void Swept(bool dropped)
    {
        if (dropped)
        {
            // A caller that found it before the drop can neither claim from it nor submit to it (sealed): it goes to the
            // actor before its call returns. What was pushed before the seal is rerouted by this give-back.
            Loan.Close();
            _state = PartitionState.Dropped;
            SealOnGiveBack();
        }

        GiveBack();
    }

    /// <summary>In its turn: whether it holds nothing, nobody waits and its rates are at rest; sheds a gate it no longer needs.</summary>
    private bool IsIdle()
    {
        if (_gate is null)
        {
            return _held == 0 && _fifo.Count == 0;
        }

        if (_rates is not null)
        {
            var now = _gate.Now;
            return _gate.Waiting == 0 && _pool!.InUse == 0 && Array.TrueForAll(_rates, rate => rate.RestsAt(now) <= now);
        }

        if (_gate.Waiting == 0)
        {
            // Nobody waited since the last sweep: back to a bare count (no deadline is left, nobody can be passed), whose
            // lease numbers go on from the gate's, as the gate's went on from the count's (PartitionLeaseNumbersRound41Tests).
            _held = _pool!.InUse;
            _lastLeaseId = _gate.LastLeaseId;
            _gate = null;
            _pool = null;
        }

        return _held == 0 && _gate is null;
    }

    /// <summary>
    /// In its turn: used, so the sweeps that found it idle start counting again — stored only when some had (a store takes
    /// the partition's line from the core that ran its turn before, on most operations of a contended partition).
    /// </summary>
    private void NotIdle()
    {
        if (IdleSweeps != 0)
        {
            IdleSweeps = 0;
        }
    }
}
