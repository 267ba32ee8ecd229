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
/// request until after it was dropped.
/// </summary>
/// <typeparam name="TPartition">A partition's state.</typeparam>
/// <param name="idleTimeout">How long a partition stays idle before it is dropped: two sweep periods.</param>
/// <param name="dropping">
/// Counts each drop as a request on its way while the sweep removes the partition and reroutes what was pushed to it
/// (<see cref="ISweptPartition.Swept"/>), so a caller that finds the key without a partition meanwhile does not make
/// one past those requests; <c>null</c> for none.
/// </param>
internal sealed class PartitionTable<TPartition>(TimeSpan idleTimeout, OnTheWay? dropping = null)
    where TPartition : class, ISweptPartition
{
    /// <summary>The live partitions by key.</summary>
    private readonly ConcurrentDictionary<object, TPartition> _partitions = new();

    /// <summary>Idle sweeps in a row that drop a partition: idle at the first, then two whole periods more.</summary>
    public const int SweepsToDrop = 3;

    /// <summary>When the last counted sweep ran; <c>null</c> before the first.</summary>
    private TimeSpan? _lastSweep;

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

    /// <summary>The live partitions by key, for readers on any thread.</summary>
    public IEnumerable<KeyValuePair<object, TPartition>> Entries => _partitions;

    /// <summary>The live partition for <paramref name="key"/>, for readers on any thread (nothing is marked).</summary>
    public bool TryGet(object key, [MaybeNullWhen(false)] out TPartition partition) => _partitions.TryGetValue(key, out partition);

    /// <summary>Publishes <paramref name="partition"/>, made for <paramref name="key"/>, unless the key has a live one already (made by someone else meanwhile).</summary>
    /// <returns>Whether it was published.</returns>
    public bool TryAdd(object key, TPartition partition)
    {
        if (!_partitions.TryAdd(key, partition))
        {
            return false;
        }

        Interlocked.Increment(ref _count);
        Interlocked.Increment(ref _made);
        return true;
    }

    /// <summary>Withdraws <paramref name="partition"/>, published for <paramref name="key"/> by <see cref="TryAdd"/>, if it is still there (its maker found the limiter stopping).</summary>
    public void Remove(object key, TPartition partition)
    {
        if (_partitions.TryRemove(new KeyValuePair<object, TPartition>(key, partition)))
        {
            Interlocked.Decrement(ref _count);
        }
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
    /// <param name="now">The owner's time.</param>
    /// <param name="keyFailed">
    /// Told when a key's <c>GetHashCode</c> or <c>Equals</c> threw as its partition was removed: that partition is kept
    /// (not dropped, its turn given back), a later sweep tries again, and the sweep goes on; <c>null</c> to let it through.
    /// </param>
    public List<TPartition> Sweep(TimeSpan now, Action<Exception>? keyFailed = null)
    {
        var dropped = new List<TPartition>();
        if (_lastSweep is { } last && now - last < SweepPeriod)
        {
            return dropped;
        }

        _lastSweep = now;
        foreach (var (key, partition) in _partitions)
        {
            if (!partition.SweepIsIdle())
            {
                partition.IdleSweeps = 0;
            }
            else if (++partition.IdleSweeps >= SweepsToDrop)
            {
                // On its way from before the key has no partition until what was pushed to it is rerouted.
                dropping?.Sending();
                try
                {
                    Remove(key, partition);
                }
                catch (Exception error) when (keyFailed is not null)
                {
                    dropping?.Handled();
                    partition.Swept(dropped: false);
                    keyFailed(error);
                    continue;
                }

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

    /// <summary>Drops every partition (the limiter stops) and returns them, to be closed.</summary>
    /// <remarks>
    /// One by one, each removal counted off as a drop is: a caller's <see cref="TryAdd"/> racing it is either taken with
    /// the rest or left to its maker (which finds the limiter stopping and <see cref="Remove"/>s it), and the count
    /// stays the table's size either way.
    /// </remarks>
    /// <param name="keyFailed">
    /// Told when a key's <c>GetHashCode</c> or <c>Equals</c> threw as its partition was removed: that partition is
    /// returned all the same (to be closed) and stays in the table, counted; <c>null</c> to let it through.
    /// </param>
    public List<TPartition> Clear(Action<Exception>? keyFailed = null)
    {
        var cleared = new List<TPartition>();
        foreach (var entry in _partitions)
        {
            bool removed;
            try
            {
                removed = _partitions.TryRemove(entry);
            }
            catch (Exception error) when (keyFailed is not null)
            {
                keyFailed(error);
                cleared.Add(entry.Value);
                continue;
            }

            if (removed)
            {
                Interlocked.Decrement(ref _count);
                cleared.Add(entry.Value);
            }
        }

        return cleared;
    }
}
