using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace ActorQueue.Actors;

/// <summary>
/// The counts of every live partition, by key, as <see cref="PartitionedGatekeeper.Statistics{TKey}"/> reads them on the
/// caller's thread: one entry per live partition, whatever its key does. A key is any <c>TKey</c>, and a key whose
/// <c>GetHashCode</c> or <c>Equals</c> throws (or whose hash changed since its partition was made, so that it has a
/// second partition under its new hash) cannot be put in a dictionary: such an entry is kept aside, in a list that never
/// calls the key's code, rather than left out (its partition may hold permits and have waiters: the one an operator
/// most needs to see) or let throw to every reader. Enumeration, <see cref="Count"/>, <see cref="Keys"/> and
/// <see cref="Values"/> never call a key's code; a lookup hashes only the key it is given (its own exception, if any,
/// reaches its caller), finds an entry kept aside by that very key object without calling it, and else asks the given
/// key's <c>Equals</c> of each entry kept aside.
/// </summary>
/// <typeparam name="TKey">The partition key.</typeparam>
internal sealed class PartitionStatisticsView<TKey> : IReadOnlyDictionary<TKey, PartitionStatistics>
    where TKey : notnull
{
    /// <summary>The entries whose keys hashed, each once.</summary>
    private readonly Dictionary<TKey, PartitionStatistics> _hashed = [];

    /// <summary>The entries whose key threw as it was added, or equals a key added already; <c>null</c> while there is none (nearly always).</summary>
    private List<KeyValuePair<TKey, PartitionStatistics>>? _aside;

    /// <inheritdoc />
    public int Count => _hashed.Count + (_aside?.Count ?? 0);

    /// <inheritdoc />
    public IEnumerable<TKey> Keys => this.Select(static entry => entry.Key);

    /// <inheritdoc />
    public IEnumerable<PartitionStatistics> Values => this.Select(static entry => entry.Value);

    /// <inheritdoc />
    public PartitionStatistics this[TKey key] =>
        TryGetValue(key, out var statistics) ? statistics : throw new KeyNotFoundException($"No live partition of key {UserText.Of(key, "key")} was read");

    /// <summary>Adds a live partition's counts: by its key, or aside when the key throws or equals a key added already.</summary>
    /// <param name="key">The partition's key.</param>
    /// <param name="statistics">Its counts.</param>
    /// <remarks>
    /// Not logged: statistics are read as often as a dashboard polls, and the actor logs the key's failures where they
    /// change what it does (<see cref="PartitionShared.KeyLookupFailed"/>, <see cref="PartitionShared.KeyFailed"/>).
    /// </remarks>
    public void Add(TKey key, PartitionStatistics statistics)
    {
        bool added;
        try
        {
            added = _hashed.TryAdd(key, statistics);
        }
        catch (Exception)
        {
            // The key's own code: it is the partition's key, not the reader's, so the reader must not get its exception.
            added = false;
        }

        if (!added)
        {
            (_aside ??= []).Add(new KeyValuePair<TKey, PartitionStatistics>(key, statistics));
        }
    }

    /// <inheritdoc />
    public bool ContainsKey(TKey key) => TryGetValue(key, out _);

    /// <inheritdoc />
    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out PartitionStatistics value)
    {
        if (_aside is { } aside && !typeof(TKey).IsValueType)
        {
            // The key object itself first: a key kept aside because it throws is found without calling it.
            foreach (var entry in aside)
            {
                if (ReferenceEquals(entry.Key, key))
                {
                    value = entry.Value;
                    return true;
                }
            }
        }

        if (_hashed.TryGetValue(key, out value))
        {
            return true;
        }

        if (_aside is not null)
        {
            foreach (var entry in _aside)
            {
                if (EqualityComparer<TKey>.Default.Equals(key, entry.Key))
                {
                    value = entry.Value;
                    return true;
                }
            }
        }

        return false;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<TKey, PartitionStatistics>> GetEnumerator() =>
        _aside is null ? _hashed.GetEnumerator() : _hashed.Concat(_aside).GetEnumerator();

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
