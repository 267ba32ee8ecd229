using System.Text;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>The durable queue's book without actors: order, delays, retries, dead letters, and replay equal to a snapshot.</summary>
public class DurableBookTests
{
    private static readonly Func<ReadOnlyMemory<byte>, string> Decode = bytes => Encoding.UTF8.GetString(bytes.Span);

    private static ItemAccepted Accepted(long id, int priority = 0, long due = 0) => new(id, priority, due, Encoding.UTF8.GetBytes($"item-{id}"));

    private static List<long> TakeAll(DurableBook<string> book, long now)
    {
        var taken = new List<long>();
        while (book.TryTake(now, out var id, out _, out _, out _, Decode))
        {
            taken.Add(id);
        }

        return taken;
    }

    [Fact]
    public void Higher_priority_goes_first_and_one_priority_keeps_the_order_of_acceptance()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1, priority: 0));
        book.Apply(Accepted(2, priority: 5));
        book.Apply(Accepted(3, priority: 0));
        book.Apply(Accepted(4, priority: 5));
        book.Apply(Accepted(5, priority: -1));

        Assert.Equal([2, 4, 1, 3, 5], TakeAll(book, now: 0));
        Assert.Null(book.BrokenInvariant());
    }

    [Fact]
    public void A_delayed_item_is_not_handed_out_before_its_time_and_then_by_priority()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1, priority: 9, due: 100));
        book.Apply(Accepted(2, priority: 0));

        Assert.Equal([2], TakeAll(book, now: 99));
        Assert.Equal(100, book.NextDueTicks);
        Assert.Equal([1], TakeAll(book, now: 100));
        Assert.Null(book.NextDueTicks);
    }

    [Fact]
    public void A_retry_waits_for_its_time_and_a_dead_letter_keeps_its_tries_and_last_error()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1));
        Assert.True(book.TryTake(0, out var id, out _, out var item, out _, Decode));
        Assert.Equal("item-1", item);
        book.Apply(new ItemStarted(id));
        book.Apply(new ItemRetrying(id, 50, "boom 1"));
        Assert.Empty(TakeAll(book, now: 49));
        Assert.True(book.TryTake(50, out _, out var attempts, out _, out _, Decode));
        Assert.Equal(1, attempts);
        book.Apply(new ItemStarted(id));
        book.Apply(new ItemDeadLettered(id, "boom 2"));

        var dead = Assert.Single(book.DeadLetters(Decode));
        Assert.Equal(new DeadLetter<string>(1, "item-1", 2, "boom 2"), dead);
        Assert.Equal(new QueueMetrics(1, 1, 1, 0), book.Metrics);
        Assert.Equal(0, book.Unfinished);
        Assert.Null(book.BrokenInvariant());
    }

    [Fact]
    public void A_requeued_dead_letter_runs_again_with_its_tries_reset_and_a_purged_one_is_gone()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1));
        book.Apply(Accepted(2));
        foreach (var id in TakeAll(book, 0))
        {
            book.Apply(new ItemStarted(id));
            book.Apply(new ItemDeadLettered(id, "boom"));
        }

        Assert.Equal([1, 2], book.DeadIds(null));
        Assert.Equal([2], book.DeadIds([2, 7]));
        book.Apply(new ItemRequeued(1));
        book.Apply(new ItemRemoved(2, RemovalReason.Purged));

        Assert.True(book.TryTake(0, out var again, out var attempts, out _, out _, Decode));
        Assert.Equal((1, 0), (again, attempts));
        Assert.Empty(book.DeadLetters(Decode));
        Assert.Equal(3, book.Metrics.Enqueued);
        Assert.Null(book.BrokenInvariant());
    }

    [Fact]
    public void A_running_item_is_waiting_again_in_a_snapshot_and_the_snapshot_rebuilds_the_same_book()
    {
        var book = new DurableBook<string>();
        for (var id = 1; id <= 4; id++)
        {
            book.Apply(Accepted(id, priority: id % 2, due: id == 4 ? 500 : 0));
        }

        Assert.True(book.TryTake(0, out var running, out _, out _, out _, Decode));
        book.Apply(new ItemStarted(running));
        Assert.True(book.TryTake(0, out var done, out _, out _, out _, Decode));
        book.Apply(new ItemCompleted(done));

        var restored = new DurableBook<string>();
        restored.Apply(book.Snapshot());

        Assert.Equal(book.NextId, restored.NextId);
        Assert.Equal(3, restored.Size);
        Assert.Equal(0, restored.InFlight);
        Assert.Equal(book.Metrics with { InFlight = 0 }, restored.Metrics with { InFlight = 0 });
        Assert.Equal([running, 2], TakeAll(restored, now: 0)[..2]);
        Assert.Null(restored.BrokenInvariant());
    }

    [Fact]
    public void A_try_counts_when_it_fails_and_a_try_cut_short_by_a_crash_counts_none()
    {
        var book = new DurableBook<string>();
        book.Apply(new DurableBatch([Accepted(1), Accepted(2)]));
        Assert.True(book.TryTake(0, out var id, out _, out _, out _, Decode));
        book.Apply(new ItemRetrying(id, 0, "boom"));
        Assert.True(book.TryTake(0, out _, out var second, out _, out _, Decode)); // its second try, running at the crash

        var restarted = new DurableBook<string>();
        restarted.Apply(book.Snapshot());
        Assert.True(restarted.TryTake(0, out var again, out var attempts, out _, out _, Decode));

        Assert.Equal((1, 1, 1), (again, second, attempts)); // the crash spent no try: the next is the second again
        book.Apply(new ItemStarted(2)); // journals written with starts: a start counts nothing
        Assert.True(book.TryTake(0, out var other, out var otherAttempts, out _, out _, Decode));
        Assert.Equal((2, 0), (other, otherAttempts));
    }

    [Fact]
    public void A_withdrawn_put_never_counts_and_a_drained_item_counts_as_drained()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1));
        book.Apply(Accepted(2));
        book.Apply(new ItemRemoved(1, RemovalReason.Withdrawn));
        book.Apply(new ItemRemoved(2, RemovalReason.Drained));

        Assert.Equal(new QueueMetrics(1, 0, 0, 0) { Drained = 1 }, book.Metrics);
        Assert.Equal(0, book.Size);
        Assert.Null(book.BrokenInvariant());
    }

    /// <summary>
    /// An item a drain has taken is still queued but out of the run order until its removal is written; a refused
    /// removal puts it back at its place (a delayed one delayed again).
    /// </summary>
    [Fact]
    public void A_drained_item_waits_out_of_the_run_order_until_its_removal_is_written_or_goes_back_to_its_place()
    {
        var book = new DurableBook<string>();
        book.Apply(Accepted(1));
        book.Apply(Accepted(2));
        book.Apply(Accepted(3, due: 100));
        book.Draining(1);
        book.Draining(3);

        Assert.Equal(3, book.Size);
        Assert.Equal([2L], book.Waiting(Decode).Select(entry => entry.Id));
        Assert.Null(book.BrokenInvariant());

        book.Return(1);
        book.Return(3);
        book.Draining(2);
        book.Apply(new ItemRemoved(2, RemovalReason.Drained));
        Assert.Equal([1L, 3L], book.Waiting(Decode).Select(entry => entry.Id));
        Assert.Equal(100, book.NextDueTicks);
        Assert.Equal(new QueueMetrics(3, 0, 0, 0) { Drained = 1 }, book.Metrics);
        Assert.Equal([1L], TakeAll(book, now: 0));
        Assert.Null(book.BrokenInvariant());
    }

    /// <summary>
    /// The distributed queue's journal book counts every hand-out as a try (its delivery count is hand-outs + 1), in a
    /// snapshot too; the local queue's book counts only failed tries.
    /// </summary>
    [Fact]
    public void A_book_that_counts_starts_counts_each_hand_out_and_the_local_book_does_not()
    {
        var counting = new DurableBook<string>(countsStarts: true);
        var local = new DurableBook<string>();
        foreach (var book in new[] { counting, local })
        {
            book.Apply(Accepted(1));
            book.Apply(new ItemStarted(1));
            book.Apply(new ItemStarted(1));
        }

        Assert.Equal(2, Assert.Single(counting.Snapshot().Items).Attempts);
        Assert.Equal(0, Assert.Single(local.Snapshot().Items).Attempts);
        Assert.Null(counting.BrokenInvariant());
    }

    [Theory]
    [InlineData(1, 10)]
    [InlineData(2, 20)]
    [InlineData(3, 40)]
    [InlineData(9, 60)]
    public void Backoff_grows_by_the_multiplier_up_to_the_longest_wait(int retry, int seconds)
    {
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(10), Multiplier = 2, MaxDelay = TimeSpan.FromMinutes(1), Jitter = 0 };
        Assert.Equal(TimeSpan.FromSeconds(seconds), policy.DelayBefore(retry, 0.7));
    }

    [Fact]
    public void Jitter_spreads_the_wait_both_ways_by_its_share()
    {
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(10), Jitter = 0.5 };
        Assert.Equal(TimeSpan.FromSeconds(5), policy.DelayBefore(1, 0));
        Assert.Equal(TimeSpan.FromSeconds(10), policy.DelayBefore(1, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(14.9), policy.DelayBefore(1, 0.99));
    }

    [Fact]
    public void Bad_durability_settings_name_the_setting_and_the_value()
    {
        var attempts = Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { MaxAttempts = 0 });
        Assert.Equal("MaxAttempts", attempts.ParamName);
        Assert.Contains("got 0", attempts.Message, StringComparison.Ordinal);
        Assert.Equal("Jitter", Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Jitter = 1.5 }).ParamName);
        Assert.Equal("SnapshotEvery", Assert.Throws<ArgumentOutOfRangeException>(() => new QueueDurability { SnapshotEvery = 0 }).ParamName);
        Assert.Equal("StoragePath", Assert.Throws<ArgumentException>(() => new QueueDurability { StoragePath = " " }).ParamName);
    }
}
