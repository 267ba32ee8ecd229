using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>What a partition publishes for callers and meters: its counts, and with rates the tokens a call could take now.</summary>
internal sealed partial class Partition
{
    /// <summary>In its turn (or before anyone sees it), for a partition with rates: publishes <see cref="AvailableTokens"/> and until when they hold.</summary>
    private void PublishTokens()
    {
        var now = _gate!.Now;
        var free = _gate.Waiting == 0 && _gate.IsOpen && _pool!.Available(now) > 0 ? long.MaxValue : 0;
        var until = TimeSpan.MaxValue;
        foreach (var rate in _rates!)
        {
            var left = rate.Available(now);
            free = rate.Measure == PermitMeasure.Tokens ? Math.Min(free, left) : left > 0 ? free : 0;
            var gain = rate.NextGainAt(now);
            until = gain < until ? gain : until;
        }

        Volatile.Write(ref _freeTokens, free == long.MaxValue ? 0 : free);
        Volatile.Write(ref _freeTokensUntil, until == TimeSpan.MaxValue ? long.MaxValue : (_gateOrigin + until).Ticks);
    }

    private void Publish(in PermitSnapshot now)
    {
        // The counts first: they are the partition's state, the meters only report them.
        // Each stored only when it changes: a store, even of the same value, takes the partition's line from the core that
        // ran the turn before (a contended partition's turn moves between cores), and its callers read beside these.
        var running = (int)now.InUse;
        var (ranDelta, waitDelta) = (running - _running, now.Waiting - _waiting);
        if (ranDelta != 0)
        {
            _running = running;
        }

        if (waitDelta != 0)
        {
            _waiting = now.Waiting;
        }

        var queued = _gate?.Queued ?? _fifo.Queued;
        if (queued != Volatile.Read(ref _queued))
        {
            Volatile.Write(ref _queued, queued);
        }

        _shared.Meter(ranDelta, waitDelta);
    }
}
