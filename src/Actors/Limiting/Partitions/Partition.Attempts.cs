using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>Callers that will not wait (<c>AttemptAcquire</c>): granted in a free turn if nobody waits and the slots (and rates) allow it now, else refused, judged or not.</summary>
internal sealed partial class Partition
{
    /// <summary>The rates alone, asked when they would allow a refused attempt (<see cref="Attempt"/>); made at the first refusal.</summary>
    private PermitPolicies? _ratePolicies;

    /// <summary>
    /// In its turn, for a caller that will not wait: grants <paramref name="request"/> at once if the partition is live,
    /// nobody waits and its slots (and rates) allow it now, as <see cref="Offer"/> grants a request that need not wait
    /// (the same lease, counted and metered the same way); else takes nothing, never queues it and fails nothing.
    /// </summary>
    /// <param name="request">The attempt: made for this call, seen by nobody else, so a grant cannot be lost.</param>
    /// <param name="judged">
    /// Refused with nobody waiting, so by the slots or rates: <paramref name="request"/>'s own verdict, and
    /// its <see cref="AcquireRequest.RetryAfter"/> says when the rates would allow it (<c>null</c>: a slot refused it).
    /// </param>
    private bool Attempt(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        NotIdle();
        if (_state != PartitionState.Live)
        {
            return false;
        }

        request.Releaser = this;
        var demand = request.Demand;
        if (_gate is null)
        {
            // Nobody is passed: with someone waiting it is refused unjudged, as a gate refuses it.
            if (_fifo.Count != 0 || demand.Permits > _shared.Settings.MaxRunning - _held)
            {
                return false;
            }

            GrantLean(request, demand, waited: false);
            return true;
        }

        if (_gate.TryAcquire(demand, out var grant))
        {
            var granted = request.TryGrant(grant);
            Debug.Assert(granted, "An attempt's request is seen by nobody else: it cannot be cancelled.");
            _shared.Granted(request, grant);
            return true;
        }

        if (_gate.Waiting == 0 && _gate.IsOpen)
        {
            judged = true;
            if (_rates is not null)
            {
                // The rates alone: a wait of zero means they allow it now, and a slot refused it.
                _ratePolicies ??= new PermitPolicies(_rates);
                request.RetryAfter = _ratePolicies.RetryAfter(demand, [], _gate.Now) is { } wait && wait > TimeSpan.Zero ? wait : null;
            }
        }

        return false;
    }

    /// <summary>
    /// A caller that will not wait, on a live partition: takes the turn if it is free (never waits for it) and, in it,
    /// grants <paramref name="request"/> only if nobody waits and the partition's slots (and rates) allow it now, then
    /// gives the turn back (running what was pushed meanwhile, lending as every turn does).
    /// </summary>
    /// <param name="request">The attempt; granted (its result set) when this returns <c>true</c>.</param>
    /// <param name="judged">Refused by the slots or rates with nobody waiting (then the request's <c>RetryAfter</c> says when the rates would allow it, if they refused it).</param>
    /// <returns>Whether it was granted; <c>false</c> too when the turn is taken or sealed (busy, or dropped).</returns>
    public bool TryAttempt(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        if (!TryTake())
        {
            return false;
        }

        var granted = AttemptSafely(request, out judged);
        GiveBack();
        return granted;
    }

    /// <summary>In the turn its maker took on a partition it made and published (a caller that will not wait): grants <paramref name="request"/>, as a fresh partition does what fits, and gives the turn back.</summary>
    /// <returns>Whether it was granted.</returns>
    public bool AttemptFirst(PartitionAcquireRequest request)
    {
        var granted = AttemptSafely(request, out _);
        GiveBack();
        return granted;
    }

    /// <summary>In the turn: <see cref="Attempt"/>, its fault contained (logged; the caller is refused, and counted so by its adapter, not as a failed request too).</summary>
    private bool AttemptSafely(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        try
        {
            return Attempt(request, out judged);
        }
        catch (Exception error)
        {
            _shared.AttemptFaulted(Key, error);
            return false;
        }
    }
}
