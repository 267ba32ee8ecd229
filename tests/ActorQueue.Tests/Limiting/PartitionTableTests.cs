using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>The rule that makes and stops partitions, without actors, on a clock the test moves.</summary>
public class PartitionTableTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(10);

    private sealed class Child(object key)
    {
        public object Key { get; } = key;
    }

    private readonly PartitionTable<Child> _table = new(IdleTimeout);

    private Child Route(object key) => _table.Route(key, k => new Child(k));

    [Fact]
    public void A_partition_is_stopped_only_after_staying_idle_for_the_whole_timeout()
    {
        var child = Route("a");
        _table.Idle("a", child, handled: 1, TimeSpan.FromSeconds(1));

        Assert.Empty(_table.Sweep(TimeSpan.FromSeconds(10.9)));
        var stopped = Assert.Single(_table.Sweep(TimeSpan.FromSeconds(11)));

        Assert.Same(child, stopped.Value);
        Assert.Equal(0, _table.Count);
    }

    [Fact]
    public void A_request_routed_after_the_idle_report_keeps_the_partition_alive()
    {
        var child = Route("a");
        _table.Idle("a", child, handled: 1, TimeSpan.Zero);

        // The race: the parent routes a request while the child's idle report is already on record.
        Assert.Same(child, Route("a"));

        Assert.Empty(_table.Sweep(TimeSpan.FromHours(1)));
        Assert.Equal(1, _table.Count);
    }

    [Fact]
    public void An_idle_report_that_has_not_seen_every_request_is_ignored()
    {
        var child = Route("a");
        Route("a");

        _table.Idle("a", child, handled: 1, TimeSpan.Zero);

        Assert.Empty(_table.Sweep(TimeSpan.FromHours(1)));
        _table.Idle("a", child, handled: 2, TimeSpan.FromHours(1));
        Assert.Single(_table.Sweep(TimeSpan.FromHours(2)));
    }

    [Fact]
    public void A_partition_busy_again_and_idle_again_counts_its_timeout_from_the_last_report()
    {
        var child = Route("a");
        _table.Idle("a", child, handled: 1, TimeSpan.Zero);
        Route("a");
        _table.Idle("a", child, handled: 2, TimeSpan.FromSeconds(5));

        Assert.Empty(_table.Sweep(TimeSpan.FromSeconds(12)));
        Assert.Single(_table.Sweep(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public void A_report_from_a_stopped_partition_does_not_touch_its_successor()
    {
        var first = Route("a");
        _table.Idle("a", first, handled: 1, TimeSpan.Zero);
        Assert.Single(_table.Sweep(IdleTimeout));

        var second = Route("a");
        _table.Idle("a", first, handled: 1, IdleTimeout);

        Assert.NotSame(first, second);
        Assert.Empty(_table.Sweep(TimeSpan.FromHours(1)));
        Assert.Equal(1, _table.Count);
    }

    [Fact]
    public void Withdrawing_from_a_stopped_partition_routes_nowhere_and_makes_nothing()
    {
        Assert.False(_table.TryRoute("gone", out _));
        Assert.Equal(0, _table.Count);
    }

    [Fact]
    public void A_million_distinct_keys_over_time_keep_the_table_bounded()
    {
        // One key a millisecond, each used once and idle at once; the parent sweeps every half timeout.
        var tick = TimeSpan.FromMilliseconds(1);
        var sweepEvery = (int)(IdleTimeout / 2 / tick);
        var bound = (int)((IdleTimeout + (IdleTimeout / 2)) / tick) + 1;
        var now = TimeSpan.Zero;
        var largest = 0;
        var largestReports = 0;
        for (var key = 0; key < 1_000_000; key++)
        {
            now += tick;
            var child = Route(key);
            _table.Idle(key, child, handled: 1, now);
            if (key % sweepEvery == 0)
            {
                _table.Sweep(now);
            }

            largest = Math.Max(largest, _table.Count);
            largestReports = Math.Max(largestReports, _table.IdleReports);
        }

        Assert.InRange(largest, 1, bound);
        Assert.InRange(largestReports, 1, bound);
        _table.Sweep(now + IdleTimeout);
        Assert.Equal((0, 0), (_table.Count, _table.IdleReports));
    }
}
