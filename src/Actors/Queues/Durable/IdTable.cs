using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace ActorQueue.Actors;

/// <summary>
/// A durable book's entries by id, in pages of <see cref="PageSize"/> consecutive ids, the pages by number in a dictionary.
/// Ids are handed out one after another, so the live ones sit close together: a page costs about as much as the dictionary
/// entries it replaces, and growing the table adds a page instead of copying every entry into an array twice the size.
/// </summary>
/// <remarks>
/// Why not a <see cref="Dictionary{TKey,TValue}"/> of entries: its arrays are the table's size, so from about 3,500
/// entries each resize allocated on the large object heap (85,000 bytes and up), and a recovery of 100,000 items
/// allocated 7.6 MB there in six resizes; the large object heap's budget is small, so this triggered a full (gen 2)
/// collection in the middle of most recoveries, 40–60 ms of a 60–100 ms recovery on the bench's machine (round 50 of
/// BENCHMARKS.md). Here every array is a page (<see cref="PageSize"/> references, 536 bytes) and the page dictionary holds
/// one entry per 64 ids: up to 1,931 pages (123,584 dense ids) its arrays stay under the large object heap's threshold;
/// the 1,932nd page makes its entries array 97 KB (room for 4,049 pages), the 4,050th (about 259,000 ids) 202 KB: one
/// allocation there per doubling, a sixty-fourth of a dictionary of entries. The price is for scattered survivors: a page with one live
/// entry in it costs about 620 bytes (its array, its object and its dictionary entry) against some 50 for a dictionary
/// entry, so a million ids of which one in a hundred survive scattered (dead letters) hold about 4.6 MB here, 0.5 MB
/// there. Larger pages would push the threshold further and make that price higher.
/// Enumeration is in ascending id order (the pages' numbers sorted): deterministic, and the order a recovery's heap is
/// already built in.
/// </remarks>
/// <typeparam name="TValue">The entry.</typeparam>
[DebuggerDisplay("Count = {Count}")]
internal sealed class IdTable<TValue>
    where TValue : class
{
    /// <summary>Ids per page.</summary>
    internal const int PageSize = 1 << PageBits;

    private const int PageBits = 6;
    private const long PageMask = PageSize - 1;

    private readonly Dictionary<long, Page> _pages = [];

    /// <summary>The page used last (most lookups fall on the newest ids, or on the ones a replay just added): no dictionary lookup for it.</summary>
    private Page? _recent;

    /// <summary>Entries in the table.</summary>
    public int Count { get; private set; }

    /// <summary>The entries, in ascending id order.</summary>
    public IEnumerable<TValue> Values
    {
        get
        {
            foreach (var (_, page) in PagesInOrder())
            {
                foreach (var value in page.Slots)
                {
                    if (value is not null)
                    {
                        yield return value;
                    }
                }
            }
        }
    }

    /// <summary>The entry of <paramref name="id"/>.</summary>
    /// <exception cref="KeyNotFoundException">No entry has that id.</exception>
    public TValue this[long id] => TryGetValue(id, out var value) ? value : throw new KeyNotFoundException($"No entry with id {id} is in the table");

    /// <summary>The entry of <paramref name="id"/>, if there is one.</summary>
    public bool TryGetValue(long id, [MaybeNullWhen(false)] out TValue value)
    {
        value = Find(id >> PageBits)?.Slots[id & PageMask];
        return value is not null;
    }

    /// <summary>Adds <paramref name="value"/> under <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">An entry has that id already.</exception>
    public void Add(long id, TValue value)
    {
        var number = id >> PageBits;
        var page = Find(number);
        if (page is null)
        {
            page = new Page(number);
            _pages.Add(number, page);
            _recent = page;
        }

        ref var slot = ref page.Slots[id & PageMask];
        if (slot is not null)
        {
            throw new ArgumentException($"An entry with id {id} is already in the table", nameof(id));
        }

        slot = value;
        page.Live++;
        Count++;
        AssertCounted(page);
    }

    /// <summary>Removes the entry of <paramref name="id"/>; <c>false</c> when there was none. A page left empty goes.</summary>
    public bool Remove(long id)
    {
        var number = id >> PageBits;
        if (Find(number) is not { } page || page.Slots[id & PageMask] is null)
        {
            return false;
        }

        page.Slots[id & PageMask] = null;
        page.Live--;
        Count--;
        AssertCounted(page);
        if (page.Live == 0)
        {
            _pages.Remove(number);
            if (ReferenceEquals(_recent, page))
            {
                _recent = null;
            }
        }

        return true;
    }

    /// <summary>Removes every entry.</summary>
    public void Clear()
    {
        _pages.Clear();
        _recent = null;
        Count = 0;
    }

    /// <summary>Every array the table holds now (its pages'), for a test to see that none is on the large object heap.</summary>
    internal IEnumerable<Array> Arrays() => _pages.Values.Select(page => (Array)page.Slots);

    private Page? Find(long number)
    {
        if (_recent is { } recent && recent.Number == number)
        {
            return recent;
        }

        if (_pages.TryGetValue(number, out var page))
        {
            _recent = page;
            return page;
        }

        return null;
    }

    private IEnumerable<(long Number, Page Page)> PagesInOrder() => _pages.Values.OrderBy(page => page.Number).Select(page => (page.Number, page));

    [Conditional("DEBUG")]
    private void AssertCounted(Page page)
    {
        Debug.Assert(page.Live == page.Slots.Count(value => value is not null), $"page {page.Number} counts {page.Live} live entries, holds {page.Slots.Count(value => value is not null)}");
        Debug.Assert(Count >= page.Live, $"the table counts {Count} entries, fewer than page {page.Number}'s {page.Live}");
    }

    private sealed class Page(long number)
    {
        public long Number { get; } = number;

        public TValue?[] Slots { get; } = new TValue?[PageSize];

        public int Live { get; set; }
    }
}
