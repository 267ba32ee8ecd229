using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace ActorQueue.Actors;

/// <summary>What the <see cref="PartitionTable{TPartition}"/> asks of a partition when it sweeps.</summary>
internal interface ISweptPartition
{
    /// <summary>Sweeps in a row that found it idle and untouched; the table resets it on every request routed to it.</summary>
    int IdleSweeps { get; set; }

    /// <summary>Whether it holds nothing, nobody waits and its rates are at rest; it may shed what it no longer needs.</summary>
    /// <remarks>When it answers <c>true</c>, the table calls <see cref="Swept"/> before it sweeps the next partition.</remarks>
    bool SweepIsIdle();

    /// <summary>After <see cref="SweepIsIdle"/> answered <c>true</c>: whether the sweep dropped it.</summary>
    void Swept(bool dropped);
}

/// <summary>
/// The partitioned limiter's rule for making and dropping partitions, apart from the actor (a pure class, tested
/// alone). Every request the owner routes goes through <see cref="TryRoute"/>, which marks it
/// busy. A sweep counts, per partition, the sweeps in a row that found it idle; it drops a partition once
/// <see cref="SweepsToDrop"/> of them did, and counts a sweep only if it comes a whole sweep period after the last
/// counted one, so a partition is dropped only after staying idle and untouched for two periods (the idle timeout)
/// and at most three. Partitions are added by the owner (the actor) and, for a key with none live, by a caller that
/// will not wait (<see cref="TryAdd"/>: the first to add a key's partition wins, the other routes to it); only the
/// owner sweeps and clears. Readers of the dictionary on other threads see every partition from before its first
/// request until after it was dropped. A key is any object, and its <c>GetHashCode</c> and <c>Equals</c> are the
/// application's code: a lookup calls them, as it must, but a sweep's drop and the stop's clear do not. Each key is
/// kept in a <see cref="StoredKey"/> holding the hash it had when its partition was published, and a drop removes that
/// very entry by it (<see cref="StoredKey.Exactly"/>): a key that has come to throw, or whose hash changed with its
/// state, is dropped as any other (before, it was kept and retried at every sweep for as long as it threw, or left
/// behind marked dropped, counted and listed for good).
/// </summary>
/// <typeparam name="TPartition">A partition's state.</typeparam>
/// <param name="idleTimeout">How long a partition stays idle before it is dropped: two sweep periods.</param>
/// <param name="dropping">
/// Counts each drop as a request on its way while the sweep removes the partition and reroutes what was pushed to it
/// (<see cref="ISweptPartition.Swept"/>), so a caller that finds the key without a partition meanwhile does not make
/// one past those requests; <c>null</c> for none.
/// </param>
/// <param name="keys">
/// The comparer of the keys (<see cref="KeysOf{TKey}"/>: one that also looks up a value-type key unboxed); the
/// object keys' when <c>null</c>.
/// </param>
internal sealed class PartitionTable<TPartition>(TimeSpan idleTimeout, OnTheWay? dropping = null, IEqualityComparer<object>? keys = null)
    where TPartition : class, ISweptPartition
{
    /// <summary>The live partitions by key, each key in its <see cref="StoredKey"/>; looked up by the bare key.</summary>
    private readonly ConcurrentDictionary<object, TPartition> _partitions = new(keys ?? KeyComparer.Instance);

    /// <summary>
    /// The dictionary's lookup by an unboxed value-type key, boxed, made by the first such lookup
    /// (<see cref="TryGet{TKey}"/>; asking the dictionary for it on every call tests its comparer against a generic
    /// interface: 1.4 % of the contended row); <c>null</c> before, and for a table whose comparer has none. Racing first
    /// lookups write equal values.
    /// </summary>
    private object? _unboxed;

    /// <summary>
    /// The comparer of a table whose keys are <typeparamref name="TKey"/>s: as the object keys' one, and it also looks up
    /// a bare <typeparamref name="TKey"/> without boxing it (<see cref="TryGet{TKey}"/>), calling the same
    /// <c>GetHashCode</c> and <c>Equals(object)</c> of the key.
    /// </summary>
    public static IEqualityComparer<object> KeysOf<TKey>()
        where TKey : notnull => KeyComparer<TKey>.Instance;

    /// <summary>Idle sweeps in a row that drop a partition: idle at the first, then two whole periods more.</summary>
    public const int SweepsToDrop = 3;

    /// <summary><see cref="_sweptAt"/> before the first counted sweep (the owner's time is never negative).</summary>
    private const long NotSwept = -1;

    /// <summary>The owner's time of the last counted sweep, in ticks (<see cref="NotSwept"/> before the first); written by the owner, read on any thread (<see cref="SweepMissed"/>).</summary>
    private long _sweptAt = NotSwept;

    /// <summary>1 once <see cref="SweepMissed"/> said a sweep is missing, until the next sweep (counted or not).</summary>
    private int _sweepAsked;

    /// <summary>How many partitions were ever made.</summary>
    private long _made;

    /// <summary>How many are live (the dictionary's own count takes all its locks).</summary>
    private int _count;

    /// <summary>How often the owner sweeps: half the idle timeout (at least a millisecond).</summary>
    public TimeSpan SweepPeriod { get; } = idleTimeout / 2 > TimeSpan.FromMilliseconds(1) ? idleTimeout / 2 : TimeSpan.FromMilliseconds(1);

    /// <summary>How many partitions are live.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>How many partitions were ever made (a dropped key's next request makes another).</summary>
    public long Made => Volatile.Read(ref _made);

    /// <summary>The live partitions by key, for readers on any thread; enumerating them calls no key's code.</summary>
    public IEnumerable<KeyValuePair<object, TPartition>> Entries =>
        _partitions.Select(static entry => new KeyValuePair<object, TPartition>(((StoredKey)entry.Key).Key, entry.Value));

    /// <summary>The live partition for <paramref name="key"/>, for readers on any thread (nothing is marked).</summary>
    public bool TryGet(object key, [MaybeNullWhen(false)] out TPartition partition) => _partitions.TryGetValue(key, out partition);

    /// <summary>
    /// As <see cref="TryGet(object, out TPartition)"/>, for a key of the limiter's own type: a value-type key is looked
    /// up without boxing it when the table's comparer is <see cref="KeysOf{TKey}"/>'s (a contended call looks its key up
    /// once, and boxing it was an allocation per call).
    /// </summary>
    public bool TryGet<TKey>(TKey key, [MaybeNullWhen(false)] out TPartition partition)
        where TKey : notnull
    {
        if (!typeof(TKey).IsValueType)
        {
            return _partitions.TryGetValue(key, out partition);
        }

        // A boxed struct's type test is one compare; the dictionary's own test of its comparer is a cast helper's call.
        if (Volatile.Read(ref _unboxed) is not ConcurrentDictionary<object, TPartition>.AlternateLookup<TKey> unboxed)
        {
            if (!_partitions.TryGetAlternateLookup(out unboxed))
            {
                return _partitions.TryGetValue(key, out partition); // the object keys' comparer (only tests make such a table for a struct key)
            }

            Volatile.Write(ref _unboxed, unboxed);
        }

        return unboxed.TryGetValue(key, out partition);
    }

    /// <summary>Publishes <paramref name="partition"/>, made for <paramref name="key"/>, unless the key has a live one already (made by someone else meanwhile).</summary>
    /// <returns>Whether it was published.</returns>
    public bool TryAdd(object key, TPartition partition)
    {
        if (!_partitions.TryAdd(new StoredKey(key), partition))
        {
            return false;
        }

        Interlocked.Increment(ref _count);
        Interlocked.Increment(ref _made);
        return true;
    }

    /// <summary>Withdraws <paramref name="partition"/>, published for <paramref name="key"/> by <see cref="TryAdd"/>, if it is still there (its maker found the limiter stopping).</summary>
    /// <remarks>Looked up by the key, on its maker's thread: a key that throws there throws to its maker.</remarks>
    public void Remove(object key, TPartition partition)
    {
        if (_partitions.TryRemove(new KeyValuePair<object, TPartition>(key, partition)))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    /// <summary>Removes the entry of <paramref name="partition"/> whose key is <paramref name="stored"/>, by its published hash and by reference: no key's code is called.</summary>
    /// <returns>Whether it was there.</returns>
    private bool RemoveExactly(object stored, TPartition partition)
    {
        if (!_partitions.TryRemove(new KeyValuePair<object, TPartition>(((StoredKey)stored).Exactly(), partition)))
        {
            return false;
        }

        Interlocked.Decrement(ref _count);
        return true;
    }

    /// <summary>The live partition for <paramref name="key"/>, marked busy; <c>false</c> (nothing made) when none is live.</summary>
    public bool TryRoute(object key, [MaybeNullWhen(false)] out TPartition partition)
    {
        if (_partitions.TryGetValue(key, out partition))
        {
            partition.IdleSweeps = 0;
            return true;
        }

        return false;
    }

    /// <summary>Drops and returns the partitions idle for <see cref="SweepsToDrop"/> counted sweeps; a sweep within a period of the last counted one does nothing.</summary>
    /// <remarks>A drop removes its entry exactly (<see cref="RemoveExactly"/>): no key's code is called, so none can keep its partition from being dropped.</remarks>
    /// <param name="now">The owner's time.</param>
    public List<TPartition> Sweep(TimeSpan now)
    {
        var dropped = new List<TPartition>();
        Volatile.Write(ref _sweepAsked, 0); // any sweep, counted or not: one asked for may be this one
        if (_sweptAt != NotSwept && now.Ticks - _sweptAt < SweepPeriod.Ticks)
        {
            return dropped;
        }

        Volatile.Write(ref _sweptAt, now.Ticks);
        foreach (var (stored, partition) in _partitions)
        {
            if (!partition.SweepIsIdle())
            {
                partition.IdleSweeps = 0;
            }
            else if (++partition.IdleSweeps >= SweepsToDrop)
            {
                // On its way from before the key has no partition until what was pushed to it is rerouted.
                dropping?.Sending();
                RemoveExactly(stored, partition);
                partition.Swept(dropped: true);
                dropping?.Handled();
                dropped.Add(partition);
            }
            else
            {
                partition.Swept(dropped: false);
            }
        }

        return dropped;
    }

    /// <summary>
    /// Whether the owner's sweeps have stopped coming — none counted for two sweep periods by <paramref name="now"/> (the
    /// owner's time): its timer never fires, or could not be made — and nobody was told so since the last sweep;
    /// <c>true</c> once per missing sweep, so its caller asks the owner for one. Any thread: whoever makes a partition
    /// asks, so idle partitions are still dropped while new ones are made, and nothing grows without bound.
    /// </summary>
    public bool SweepMissed(TimeSpan now) =>
        now.Ticks - Volatile.Read(ref _sweptAt) >= 2 * SweepPeriod.Ticks && Interlocked.Exchange(ref _sweepAsked, 1) == 0;

    /// <summary>Drops every partition (the limiter stops) and returns them, to be closed; no key's code is called.</summary>
    /// <remarks>
    /// One by one, each removal counted off as a drop is: a caller's <see cref="TryAdd"/> racing it is either taken with
    /// the rest or left to its maker (which finds the limiter stopping and <see cref="Remove"/>s it), and the count
    /// stays the table's size either way.
    /// </remarks>
    public List<TPartition> Clear()
    {
        var cleared = new List<TPartition>();
        foreach (var (stored, partition) in _partitions)
        {
            if (RemoveExactly(stored, partition))
            {
                cleared.Add(partition);
            }
        }

        return cleared;
    }

    /// <summary>A key as the table keeps it: with the hash it had as its partition was published (its place in the dictionary).</summary>
    /// <param name="key">The bare key.</param>
    private sealed class StoredKey(object key)
    {
        /// <summary>The hash the key had as its partition was published.</summary>
        public int Hash { get; } = key.GetHashCode();

        /// <summary>The bare key.</summary>
        public object Key { get; } = key;

        /// <summary>A lookup of this very entry, by its published hash and by reference: finding it calls no key's code.</summary>
        public object Exactly() => new ExactKey(this);

        /// <inheritdoc />
        public override string? ToString() => Key.ToString();
    }

    /// <summary>The lookup <see cref="StoredKey.Exactly"/> makes: equal to its stored key alone, by reference.</summary>
    /// <param name="stored">The entry's stored key.</param>
    private sealed class ExactKey(StoredKey stored)
    {
        public StoredKey Stored { get; } = stored;
    }

    /// <summary>
    /// The table's comparer, symmetric whichever side the dictionary puts first: a stored key hashes as it was
    /// published, an exact lookup equals its own stored key alone (no key's code called), and otherwise two keys are
    /// equal as their bare keys say. Which key is asked matters, since a key's <c>Equals</c> may throw: a lookup by a
    /// bare key asks that key (the caller's own) about the stored one, never a stored key, so a key whose hash equals a
    /// throwing key's is not handed that key's exception; a publication meeting a stored key (both stored) asks one and,
    /// should it throw, the other, failing only when both do.
    /// </summary>
    private class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public new bool Equals(object? x, object? y) => ReferenceEquals(x, y) || (x, y) switch
        {
            (ExactKey exact, _) => ReferenceEquals(exact.Stored, y),
            (_, ExactKey exact) => ReferenceEquals(exact.Stored, x),
            (StoredKey one, StoredKey other) => EitherSays(one.Key, other.Key),
            (StoredKey stored, _) => y!.Equals(stored.Key),
            (_, StoredKey stored) => x!.Equals(stored.Key),
            _ => x!.Equals(y),
        };

        /// <summary>Whether <paramref name="one"/> says it equals <paramref name="other"/>, or, should it throw, what <paramref name="other"/> says; throws the first's exception only if both throw.</summary>
        private static bool EitherSays(object one, object other)
        {
            try
            {
                return one.Equals(other);
            }
            catch (Exception) when (TryEquals(other, one, out var equal))
            {
                return equal;
            }
        }

        private static bool TryEquals(object asked, object about, out bool equal)
        {
            try
            {
                equal = asked.Equals(about);
                return true;
            }
            catch (Exception)
            {
                equal = false;
                return false;
            }
        }

        public int GetHashCode(object key) => key switch
        {
            StoredKey stored => stored.Hash,
            ExactKey exact => exact.Stored.Hash,
            _ => key.GetHashCode(),
        };
    }

    /// <summary>
    /// <see cref="KeyComparer"/> for <typeparamref name="TKey"/> keys, which also compares a bare <typeparamref name="TKey"/>
    /// with the stored keys unboxed: its own <c>GetHashCode</c>, and its own <c>Equals(object)</c> asked about the stored
    /// key, as a lookup by the boxed key asks them (only a lookup uses it; the dictionary stores <see cref="StoredKey"/>s).
    /// </summary>
    private sealed class KeyComparer<TKey> : KeyComparer, IAlternateEqualityComparer<TKey, object>
        where TKey : notnull
    {
        public static new readonly KeyComparer<TKey> Instance = new();

        public bool Equals(TKey alternate, object other) => other is StoredKey stored && alternate.Equals(stored.Key);

        public int GetHashCode(TKey alternate) => alternate.GetHashCode();

        public object Create(TKey alternate) => new StoredKey(alternate);
    }
}
