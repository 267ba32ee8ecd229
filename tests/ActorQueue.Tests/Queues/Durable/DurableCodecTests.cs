using System.Text;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>The journal's compact format: every event and the snapshot round-trip, with no type names written.</summary>
public class DurableCodecTests
{
    public static TheoryData<object> Messages() =>
    [
        new ItemAccepted(1, -3, 638_000_000_000_000_000, Encoding.UTF8.GetBytes("{\"x\":1}")),
        new ItemStarted(long.MaxValue),
        new ItemCompleted(7),
        new ItemRetrying(8, 42, "System.InvalidOperationException: boom"),
        new ItemDeadLettered(9, "last"),
        new ItemRequeued(10),
        new ItemRemoved(11, RemovalReason.Purged),
    ];

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_event_round_trips_without_a_type_name(object message)
    {
        var bytes = DurableCodec.Encode((IDurableQueueMessage)message);
        var back = DurableCodec.Decode(bytes);

        Assert.IsType(message.GetType(), back);
        Assert.Equivalent(message, back, strict: true);
        Assert.DoesNotContain("ActorQueue", Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_round_trips_with_its_items_and_counts()
    {
        var snapshot = new DurableSnapshot(12, new DurableCounts(11, 5, 2, 1),
            [new StoredItem(3, 1, 0, 2, "err", Dead: true, new byte[] { 1, 2 }), new StoredItem(4, 0, 99, 0, null, Dead: false, new byte[] { 3 })]);

        var back = (DurableSnapshot)DurableCodec.Decode(DurableCodec.Encode(snapshot));

        Assert.Equal((snapshot.NextId, snapshot.Counts), (back.NextId, back.Counts));
        Assert.Equal(snapshot.Items.Select(i => (i.Id, i.Priority, i.DueTicks, i.Attempts, i.LastError, i.Dead, string.Join(",", i.Payload.ToArray()))),
            back.Items.Select(i => (i.Id, i.Priority, i.DueTicks, i.Attempts, i.LastError, i.Dead, string.Join(",", i.Payload.ToArray()))));
    }

    [Fact]
    public void A_batch_round_trips_its_events_in_order()
    {
        var batch = new DurableBatch([new ItemAccepted(1, 2, 0, [7]), new ItemCompleted(1), new ItemRetrying(3, 4, "boom"), new ItemRemoved(5, RemovalReason.Drained)]);

        var back = Assert.IsType<DurableBatch>(DurableCodec.Decode(DurableCodec.Encode(batch)));

        Assert.Equivalent(batch.Events, back.Events, strict: true);
        Assert.Equal(batch.Events.Select(e => e.GetType()), back.Events.Select(e => e.GetType()));
    }

    [Fact]
    public void A_record_cut_short_or_of_an_unknown_kind_is_a_clear_error()
    {
        var bytes = DurableCodec.Encode(new ItemRetrying(8, 42, "boom"));

        Assert.Throws<InvalidDataException>(() => DurableCodec.Decode(bytes[..^2]));
        Assert.Throws<InvalidDataException>(() => DurableCodec.Decode([(byte)'Z', 1]));
    }

    [Fact]
    public void Replaying_records_builds_the_same_book_as_applying_their_decoded_events()
    {
        byte[][] records =
        [
            DurableCodec.Encode(new DurableSnapshot(4, new DurableCounts(3, 1, 0, 0),
                [new StoredItem(2, 0, 0, 1, "old", Dead: false, new byte[] { 2 }), new StoredItem(3, 1, 900, 0, null, Dead: false, new byte[] { 3 })])),
            DurableCodec.Encode(new DurableBatch([new ItemAccepted(4, 0, 0, [4]), new ItemAccepted(5, 7, 0, [5]), new ItemAccepted(6, 0, 0, [6])])),
            DurableCodec.Encode(new ItemCompleted(4)),
            DurableCodec.Encode(new DurableBatch([new ItemRetrying(2, 500, "boom"), new ItemDeadLettered(6, "last"), new ItemAccepted(7, 7, 0, [7])])),
            DurableCodec.Encode(new ItemRemoved(3, RemovalReason.Drained)),
        ];
        var applied = new DurableBook<string>();
        var replayed = new DurableBook<string>();

        foreach (var record in records)
        {
            applied.Apply(DurableCodec.Decode(record));
            DurableCodec.Replay(record, replayed);
        }

        replayed.EndLoading();
        var described = Describe(replayed);
        Assert.Null(replayed.BrokenInvariant());
        Assert.Equal(Describe(applied), described);
        Assert.Equal("(3, 3, 0, 1), 5, 7, 500, 6", described); // 5 and 7 first (priority 7), 2 waits for its retry, 6 is dead
    }

    [Fact]
    public void Replaying_a_record_cut_short_is_a_clear_error()
    {
        var bytes = DurableCodec.Encode(new DurableBatch([new ItemAccepted(1, 0, 0, [1, 2, 3]), new ItemCompleted(1)]));

        Assert.Throws<InvalidDataException>(() => DurableCodec.Replay(bytes[..^3], new DurableBook<string>()));
    }

    /// <summary>The book's counts, the ready items in the order they run (taking them), when the next delayed one is due, and its dead letters.</summary>
    private static string Describe(DurableBook<string> book)
    {
        var counts = (book.Size, book.Metrics.Processed, book.InFlight, book.DeadCount);
        var due = book.NextDueTicks;
        var ready = new List<long>();
        while (book.TryTake(0, out var id, out _, out _, out _, payload => string.Join(",", payload.ToArray())))
        {
            ready.Add(id);
        }

        return $"{counts}, {string.Join(", ", ready)}, {due}, {string.Join(", ", book.DeadLetters(payload => "").Select(dead => dead.Id))}";
    }
}
