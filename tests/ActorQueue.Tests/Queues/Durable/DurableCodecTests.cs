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
            [new StoredItem(3, 1, 0, 2, "err", Dead: true, [1, 2]), new StoredItem(4, 0, 99, 0, null, Dead: false, [3])]);

        var back = (DurableSnapshot)DurableCodec.Decode(DurableCodec.Encode(snapshot));

        Assert.Equal((snapshot.NextId, snapshot.Counts), (back.NextId, back.Counts));
        Assert.Equal(snapshot.Items.Select(i => (i.Id, i.Priority, i.DueTicks, i.Attempts, i.LastError, i.Dead, string.Join(",", i.Payload))),
            back.Items.Select(i => (i.Id, i.Priority, i.DueTicks, i.Attempts, i.LastError, i.Dead, string.Join(",", i.Payload))));
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
}
