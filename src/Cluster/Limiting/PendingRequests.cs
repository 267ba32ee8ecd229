using System.Collections;
using System.Diagnostics.CodeAnalysis;
using ActorQueue.Coordination;

namespace ActorQueue.Cluster;

/// <summary>
/// A node agent's waiting requests by its request id, with what they ask for summed as they come and go
/// (<see cref="Demand"/>): their token estimates for a limiter with rates, else their permits — the queued count a
/// <c>RateLimiter</c> adapter reports, in its own permits, as the local gate sums its waiters'.
/// </summary>
/// <param name="weighTokens">Whether <see cref="Demand"/> sums the requests' tokens (a model-API limiter's) rather than their permits.</param>
internal sealed class PendingRequests(bool weighTokens) : IReadOnlyDictionary<long, PermitWaiter>
{
    private readonly Dictionary<long, PermitWaiter> _byId = [];

    /// <summary>The waiting requests' tokens (with rates) or permits, summed: one add on every entry and exit.</summary>
    public long Demand { get; private set; }

    /// <inheritdoc />
    public int Count => _byId.Count;

    /// <inheritdoc cref="IReadOnlyDictionary{TKey, TValue}.Keys" />
    public Dictionary<long, PermitWaiter>.KeyCollection Keys => _byId.Keys;

    /// <inheritdoc cref="IReadOnlyDictionary{TKey, TValue}.Values" />
    public Dictionary<long, PermitWaiter>.ValueCollection Values => _byId.Values;

    IEnumerable<long> IReadOnlyDictionary<long, PermitWaiter>.Keys => _byId.Keys;

    IEnumerable<PermitWaiter> IReadOnlyDictionary<long, PermitWaiter>.Values => _byId.Values;

    /// <inheritdoc />
    public PermitWaiter this[long key] => _byId[key];

    /// <summary>Adds request <paramref name="id"/> (ids are never reused).</summary>
    public void Add(long id, PermitWaiter request)
    {
        _byId.Add(id, request);
        Demand += Weight(request);
    }

    /// <summary>Removes request <paramref name="id"/>, if it waits.</summary>
    /// <returns>Whether it waited.</returns>
    public bool Remove(long id) => Remove(id, out _);

    /// <summary>Removes request <paramref name="id"/>, if it waits, and gives it.</summary>
    /// <returns>Whether it waited.</returns>
    public bool Remove(long id, [MaybeNullWhen(false)] out PermitWaiter request)
    {
        if (!_byId.Remove(id, out request))
        {
            return false;
        }

        Demand -= Weight(request);
        return true;
    }

    /// <summary>Removes every request.</summary>
    public void Clear()
    {
        _byId.Clear();
        Demand = 0;
    }

    /// <inheritdoc />
    public bool ContainsKey(long key) => _byId.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(long key, [MaybeNullWhen(false)] out PermitWaiter value) => _byId.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<long, PermitWaiter>> GetEnumerator() => _byId.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private long Weight(PermitWaiter request) => weighTokens ? request.Demand.Tokens : request.Demand.Permits;
}
