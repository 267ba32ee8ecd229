namespace ActorQueue.Actors;

/// <content>An item's entry in the book: its state, its place in the run order, and the order of delayed items by due time; the dead-letter queries.</content>
internal sealed partial class DurableBook<T>
{
    private enum EntryState
    {
        Ready,
        Delayed,
        Running,
        Draining,
        Dead,
    }

    /// <summary>The dead letters, oldest id first; one whose bytes cannot be read back lists the default item (its error says why it died).</summary>
    public List<DeadLetter<T>> DeadLetters(Func<ReadOnlyMemory<byte>, T> decode) =>
        [.. _entries.Values.Where(e => e.State == EntryState.Dead) // in id order, as the table lists them
            .Select(e => new DeadLetter<T>(e.Id, Decoded(e, decode) is null ? e.Item! : default!, e.Attempts, e.LastError ?? ""))];

    /// <summary>The ids of the dead letters among <paramref name="ids"/> (every dead letter when <c>null</c>), each once.</summary>
    public List<long> DeadIds(IReadOnlyCollection<long>? ids) =>
        ids is null
            ? [.. _entries.Values.Where(e => e.State == EntryState.Dead).Select(e => e.Id)] // in id order, each once, as the table lists them
            : [.. ids.Where(id => _entries.TryGetValue(id, out var e) && e.State == EntryState.Dead).Distinct().Order()];

    /// <summary>Whether item <paramref name="id"/> is a dead letter: only a dead letter is requeued or purged.</summary>
    private bool IsDead(long id) => _entries.TryGetValue(id, out var entry) && entry.State == EntryState.Dead;

    private sealed class Entry(long id, int priority, long dueTicks, ReadOnlyMemory<byte> payload) : IReadyEntry
    {
        public long Id { get; } = id;

        public int Priority { get; } = priority;

        public long DueTicks { get; set; } = dueTicks;

        /// <summary>The item's System.Text.Json bytes: its put's array, or a slice of the journal record it was read from.</summary>
        public ReadOnlyMemory<byte> Payload { get; } = payload;

        public T? Item { get; set; }

        public bool HasItem { get; set; }

        public int Attempts { get; set; }

        public string? LastError { get; set; }

        public EntryState State { get; set; }

        public int ReadyStamp { get; set; }
    }

    /// <summary>The earlier due time first, then the lower id.</summary>
    private sealed class DueOrder : IComparer<Entry>
    {
        public static readonly DueOrder Instance = new();

        public int Compare(Entry? x, Entry? y) => x!.DueTicks != y!.DueTicks ? x.DueTicks.CompareTo(y.DueTicks) : x.Id.CompareTo(y.Id);
    }
}
