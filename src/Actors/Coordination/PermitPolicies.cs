namespace ActorQueue.Coordination;

/// <summary>
/// The limits of one <see cref="PermitGate"/>, asked and changed together: a demand fits only if it fits every one,
/// and is taken from every one at once. The first policy is the primary, the one a snapshot reports.
/// </summary>
internal sealed class PermitPolicies
{
    /// <summary>The limits, primary first.</summary>
    private readonly IPermitPolicy[] _policies;

    /// <summary>What each policy counts (fixed, so read once).</summary>
    private readonly PermitMeasure[] _measures;

    /// <summary>
    /// The primary when it is a pool (every limiter's, the lock's, the capacity limiter's), called directly: the
    /// uncontended acquire pays no interface dispatch for it. <c>null</c> when the primary is another policy.
    /// </summary>
    private readonly PermitPool? _pool;

    /// <summary>The first policy asked through the interface: 1 when <see cref="_pool"/> is the primary, else 0.</summary>
    private readonly int _firstGeneric;

    public PermitPolicies(IReadOnlyList<IPermitPolicy> policies)
    {
        ArgumentOutOfRangeException.ThrowIfZero(policies.Count, nameof(policies));
        _policies = [.. policies];
        _measures = Array.ConvertAll(_policies, policy => policy.Measure);
        IsTimed = Array.Exists(_policies, policy => policy.IsTimed);
        _pool = _policies[0] as PermitPool;
        _firstGeneric = _pool is null ? 0 : 1;
    }

    /// <summary>Whether some policy changes with time alone; if none does, the policies never need the clock.</summary>
    public bool IsTimed { get; }

    /// <summary>How many policies there are.</summary>
    public int Count => _policies.Length;

    /// <summary>The policy at <paramref name="index"/>; 0 is the primary.</summary>
    public IPermitPolicy this[int index] => _policies[index];

    /// <summary>Where <paramref name="policy"/> stands, or -1.</summary>
    public int IndexOf(IPermitPolicy policy) => Array.IndexOf(_policies, policy);

    /// <summary>What <paramref name="demand"/> costs the policy at <paramref name="index"/>.</summary>
    public long Cost(int index, PermitDemand demand) => _measures[index] switch
    {
        PermitMeasure.Permits => demand.Permits,
        PermitMeasure.Tokens => demand.Tokens,
        _ => 1,
    };

    /// <summary>The first policy whose limit <paramref name="demand"/> exceeds, or -1.</summary>
    public int Exceeded(PermitDemand demand)
    {
        if (_pool is not null && demand.Permits > _pool.Limit)
        {
            return 0;
        }

        for (var i = _firstGeneric; i < _policies.Length; i++)
        {
            if (Cost(i, demand) > _policies[i].Limit)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Whether <paramref name="demand"/> fits every policy now.</summary>
    public bool CanTake(PermitDemand demand, TimeSpan now)
    {
        if (_pool is not null && !_pool.CanTake(demand.Permits, now))
        {
            return false;
        }

        for (var i = _firstGeneric; i < _policies.Length; i++)
        {
            if (!_policies[i].CanTake(Cost(i, demand), now))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Takes <paramref name="demand"/> from every policy.</summary>
    public void Take(PermitDemand demand, TimeSpan now)
    {
        _pool?.Take(demand.Permits, now);
        for (var i = _firstGeneric; i < _policies.Length; i++)
        {
            _policies[i].Take(Cost(i, demand), now);
        }
    }

    /// <summary>Gives <paramref name="demand"/> back to every policy: its grant never reached its caller.</summary>
    public void Refund(PermitDemand demand, TimeSpan now)
    {
        _pool?.Refund(demand.Permits, now);
        for (var i = _firstGeneric; i < _policies.Length; i++)
        {
            _policies[i].Refund(Cost(i, demand), now);
        }
    }

    /// <summary>A holder of <paramref name="demand"/> is done.</summary>
    public void Release(PermitDemand demand, TimeSpan now)
    {
        _pool?.Release(demand.Permits, now);
        for (var i = _firstGeneric; i < _policies.Length; i++)
        {
            _policies[i].Release(Cost(i, demand), now);
        }
    }

    /// <summary>A holder of <paramref name="charged"/> used <paramref name="actualTokens"/>: every policy that counts tokens settles the difference.</summary>
    public void Settle(PermitDemand charged, long actualTokens, TimeSpan now)
    {
        for (var i = 0; i < _policies.Length; i++)
        {
            if (_measures[i] == PermitMeasure.Tokens)
            {
                _policies[i].Settle(charged.Tokens, actualTokens, now);
            }
        }
    }

    /// <summary>When <paramref name="demand"/>, after <paramref name="ahead"/> queued before it, fits every policy; <see cref="TimeSpan.MaxValue"/> when only a release can make it fit.</summary>
    public TimeSpan FitsAt(PermitDemand demand, IEnumerable<PermitWaiter> ahead, TimeSpan now)
    {
        var latest = now;
        for (var i = 0; i < _policies.Length; i++)
        {
            // Summed wide and kept within a long: each cost is within the limit, but a few near long.MaxValue wrapped below zero ("fits now").
            var cost = (Int128)Cost(i, demand);
            foreach (var waiter in ahead)
            {
                cost += Cost(i, waiter.Demand);
            }

            var at = _policies[i].NextAvailableAt((long)Int128.Min(cost, long.MaxValue), now);
            latest = at > latest ? at : latest;
        }

        return latest;
    }

    /// <summary>The primary policy's counts, with <paramref name="waiting"/> waiters.</summary>
    public PermitSnapshot Snapshot(int waiting, TimeSpan now) =>
        _pool is not null ? new(_pool.InUse, _pool.Available(now), waiting) : new(_policies[0].InUse, _policies[0].Available(now), waiting);

    /// <summary>
    /// How long until <paramref name="demand"/>, queued behind <paramref name="ahead"/>, fits every timed policy;
    /// <c>null</c> when no policy is timed or only a release can make it fit.
    /// </summary>
    public TimeSpan? RetryAfter(PermitDemand demand, IEnumerable<PermitWaiter> ahead, TimeSpan now)
    {
        if (!IsTimed)
        {
            return null;
        }

        var at = FitsAt(demand, ahead, now);
        return at == TimeSpan.MaxValue ? null : at - now;
    }
}
