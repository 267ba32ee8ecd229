using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>The rule that makes and drops partitions, without actors, on sweep times the test chooses.</summary>
public class PartitionTableTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Period = IdleTimeout / 2;

    /// <summary>A partition whose idleness the test sets.</summary>
    private sealed class Slot(object key) : ISweptPartition
    {
        public object Key { get; } = key;

        public bool Idle { get; set; } = true;

        public int IdleSweeps { get; set; }

        public bool SweepIsIdle() => Idle;

        public void Swept(bool dropped)
        {
        }
    }

    private readonly PartitionTable<Slot> _table = new(IdleTimeout);

    /// <summary>As the actor routes a request: the live partition, marked busy, or a new one published.</summary>
    private Slot Route(object key)
    {
        if (_table.TryRoute(key, out var slot))
        {
            return slot;
        }

        slot = new Slot(key);
        Assert.True(_table.TryAdd(key, slot));
        return slot;
    }

    /// <summary>Sweeps at whole periods 1..<paramref name="last"/>; returns what the last one dropped.</summary>
    private List<Slot> SweepThrough(int first, int last)
    {
        var dropped = new List<Slot>();
        for (var sweep = first; sweep <= last; sweep++)
        {
            dropped = _table.Sweep(Period * sweep);
        }

        return dropped;
    }

    [Fact]
    public void A_partition_is_dropped_only_after_staying_idle_for_the_whole_timeout()
    {
        var slot = Route("a");

        Assert.Empty(SweepThrough(1, 2));
        var dropped = Assert.Single(_table.Sweep(Period * 3));

        Assert.Same(slot, dropped);
        Assert.Equal(0, _table.Count);
    }

    [Fact]
    public void A_request_routed_between_sweeps_keeps_the_partition_for_another_whole_timeout()
    {
        var slot = Route("a");
        SweepThrough(1, 2);

        // The race: a request reaches the partition one sweep before it would have been dropped.
        Assert.Same(slot, Route("a"));

        Assert.Empty(SweepThrough(3, 4));
        Assert.Single(_table.Sweep(Period * 5));
    }

    [Fact]
    public void A_busy_partition_is_never_dropped()
    {
        var slot = Route("a");
        slot.Idle = false;

        Assert.Empty(SweepThrough(1, 100));
        slot.Idle = true;
        Assert.Empty(SweepThrough(101, 102));
        Assert.Single(_table.Sweep(Period * 103));
    }

    [Fact]
    public void Sweeps_closer_than_a_period_count_once()
    {
        Route("a");

        // A backlog of sweeps handled at one instant (a fake clock moved far, a busy actor) must not count three times.
        for (var i = 0; i < 10; i++)
        {
            Assert.Empty(_table.Sweep(Period));
        }

        Assert.Empty(_table.Sweep(Period * 2));
        Assert.Single(_table.Sweep(Period * 3));
    }

    [Fact]
    public void A_dropped_key_gets_a_new_partition_on_its_next_request()
    {
        var first = Route("a");
        SweepThrough(1, 3);

        var second = Route("a");

        Assert.NotSame(first, second);
        Assert.Equal((1, 2L), (_table.Count, _table.Made));
    }

    [Fact]
    public void Withdrawing_from_a_dropped_partition_routes_nowhere_and_makes_nothing()
    {
        Assert.False(_table.TryRoute("gone", out _));
        Assert.Equal(0, _table.Count);
    }

    [Fact]
    public void A_million_distinct_keys_over_time_keep_the_table_bounded()
    {
        // One key a millisecond, each used once and idle at once; the actor sweeps every half timeout.
        var tick = TimeSpan.FromMilliseconds(1);
        var sweepEvery = (int)(Period / tick);
        var bound = (int)((IdleTimeout + Period) / tick) + 1;
        var now = TimeSpan.Zero;
        var largest = 0;
        for (var key = 0; key < 1_000_000; key++)
        {
            now += tick;
            Route(key);
            if (key % sweepEvery == 0)
            {
                _table.Sweep(now);
            }

            largest = Math.Max(largest, _table.Count);
        }

        Assert.InRange(largest, 1, bound);
        SweepThrough((int)(now / Period) + 1, (int)(now / Period) + 3);
        Assert.Equal(0, _table.Count);
    }
}
