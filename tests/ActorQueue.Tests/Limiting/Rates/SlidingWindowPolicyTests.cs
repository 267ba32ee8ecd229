using ActorQueue.Coordination;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The sliding window alone, on gate time: a segment's grants return exactly when it slides out.</summary>
public class SlidingWindowPolicyTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void A_segments_grants_return_exactly_when_it_slides_out_not_one_tick_earlier()
    {
        // 10 per 60 s, in 6 segments of 10 s.
        var window = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Calls);
        window.Take(4, At(5));   // segment [0, 10)
        window.Take(6, At(25));  // segment [20, 30)

        Assert.Equal(0, window.Available(At(60) - Tick));
        Assert.Equal(4, window.Available(At(60)));
        Assert.Equal(4, window.Available(At(80) - Tick));
        Assert.Equal(10, window.Available(At(80)));
    }

    [Fact]
    public void Within_one_window_it_never_grants_more_than_the_limit()
    {
        var window = new SlidingWindowPolicy(3, TimeSpan.FromSeconds(30), 3, PermitMeasure.Calls);
        var granted = new List<TimeSpan>();
        for (var ms = 0; ms < 120_000; ms += 700)
        {
            var now = TimeSpan.FromMilliseconds(ms);
            if (window.CanTake(1, now))
            {
                window.Take(1, now);
                granted.Add(now);
            }
        }

        Assert.NotEmpty(granted);
        foreach (var start in granted)
        {
            Assert.True(granted.Count(t => t >= start && t < start + TimeSpan.FromSeconds(30)) <= 3, $"more than 3 within 30 s of {start}");
        }
    }

    [Fact]
    public void Next_available_is_when_enough_old_segments_have_slid_out()
    {
        var window = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        window.Take(4, At(5));
        window.Take(6, At(25));

        Assert.Equal(At(60), window.NextAvailableAt(3, At(30)));
        Assert.Equal(At(80), window.NextAvailableAt(5, At(30)));

        // Above the limit it is a queue's sum (the gate refuses a single such demand at once): 10 by 80 s, the 11th when 60 s's 4 slide out.
        Assert.Equal(At(120), window.NextAvailableAt(11, At(30)));
    }

    [Fact]
    public void Demand_of_one_two_and_three_windows_is_served_window_by_window_as_segments_slide_out()
    {
        // 2 per minute in 6 segments, both spent at 0:00: the review's case (two queued, a retry behind them).
        var spent = new SlidingWindowPolicy(2, TimeSpan.FromMinutes(1), 6, PermitMeasure.Calls);
        spent.Take(2, At(0));

        Assert.Equal(At(60), spent.NextAvailableAt(2, At(0)));   // one window
        Assert.Equal(At(120), spent.NextAvailableAt(3, At(0)));  // two queued are served at 1:00, the retry at 2:00
        Assert.Equal(At(120), spent.NextAvailableAt(4, At(0)));
        Assert.Equal(At(180), spent.NextAvailableAt(5, At(0)));  // three windows
        Assert.Equal(At(180), spent.NextAvailableAt(6, At(5)));

        // 10 per minute in 6 segments of 10 s, partly free: 4 in [0, 10), 3 in [20, 30), asked at 30 s with 3 free.
        // Served as soon as there is room: 3 now (in [30, 40)), 4 more at 60, 3 at 80 (10), 3 at 90 (13: [30, 40)
        // slides out), 4 at 120 (17), 3 at 140 (20), 3 at 150 (23), ... each window serving exactly 10 more.
        var partly = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        partly.Take(4, At(5));
        partly.Take(3, At(25));

        Assert.Equal(At(30), partly.NextAvailableAt(3, At(30)));
        Assert.Equal(At(80), partly.NextAvailableAt(10, At(30)));
        Assert.Equal(At(90), partly.NextAvailableAt(11, At(30)));
        Assert.Equal(At(90), partly.NextAvailableAt(13, At(30)));
        Assert.Equal(At(120), partly.NextAvailableAt(14, At(30)));
        Assert.Equal(At(140), partly.NextAvailableAt(20, At(30)));
        Assert.Equal(At(150), partly.NextAvailableAt(21, At(30)));
        Assert.Equal(At(200), partly.NextAvailableAt(30, At(30)));
        Assert.Equal(At(210), partly.NextAvailableAt(31, At(30)));

        // The current segment holding some: 2 more at 35 s leave 1 free; [30, 40) gives 3 back at 90.
        partly.Take(2, At(35));
        Assert.Equal(At(90), partly.NextAvailableAt(9, At(35)));
        Assert.Equal(At(90), partly.NextAvailableAt(11, At(35)));
        Assert.Equal(At(120), partly.NextAvailableAt(12, At(35)));
    }

    [Fact]
    public void Demand_above_the_limit_behind_a_window_held_over_its_limit_waits_for_the_excess_to_slide_out()
    {
        // 10 per minute, 10 granted in [0, 10) and a settle's excess of 15 in [20, 30): nothing fits before 80 s, then 10.
        var before = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        before.Take(10, At(5));
        before.Settle(charged: 0, actual: 15, At(25));

        Assert.Equal(At(80), before.NextAvailableAt(10, At(30)));
        Assert.Equal(At(140), before.NextAvailableAt(11, At(30)));
        Assert.Equal(At(200), before.NextAvailableAt(21, At(30)));

        // The excess in the current segment: the window is empty at 90 s, 10 then, 10 more at 150 s.
        var current = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        current.Take(10, At(5));
        current.Settle(charged: 0, actual: 15, At(35));

        Assert.Equal(At(90), current.NextAvailableAt(10, At(35)));
        Assert.Equal(At(150), current.NextAvailableAt(11, At(35)));
        Assert.Equal(At(150), current.NextAvailableAt(16, At(35)));
        Assert.Equal(At(210), current.NextAvailableAt(21, At(35)));
    }

    [Fact]
    public void Demand_no_clock_can_reach_is_never_and_does_not_wrap()
    {
        var window = new SlidingWindowPolicy(1, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        window.Take(1, At(5));

        Assert.Equal(TimeSpan.MaxValue, window.NextAvailableAt(long.MaxValue, At(5)));
        Assert.Equal(TimeSpan.MaxValue, window.NextAvailableAt(long.MaxValue / 2, At(5)));
    }

    [Fact]
    public void A_long_idle_forgets_everything()
    {
        var window = new SlidingWindowPolicy(10, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        window.Take(10, At(5));

        Assert.Equal(10, window.Available(At(3600)));
        Assert.Equal(0, window.InUse);
    }

    [Fact]
    public void Settling_above_the_charge_counts_the_excess_for_one_more_window_and_below_gives_nothing_back()
    {
        var window = new SlidingWindowPolicy(100, TimeSpan.FromMinutes(1), 6, PermitMeasure.Tokens);
        window.Take(50, At(5));
        window.Settle(charged: 50, actual: 20, At(15));
        Assert.Equal(50, window.Available(At(15)));

        window.Settle(charged: 20, actual: 70, At(35)); // 50 more, in the segment [30, 40)
        Assert.Equal(0, window.Available(At(35)));
        Assert.Equal(50, window.Available(At(60)));
        Assert.Equal(100, window.Available(At(90)));
    }

    [Fact]
    public void A_window_that_does_not_split_into_whole_segments_is_refused_naming_the_segments()
    {
        var error = Assert.Throws<ArgumentException>(() => new SlidingWindowPolicy(10, TimeSpan.FromTicks(10), 3, PermitMeasure.Calls));
        Assert.Equal("segments", error.ParamName);
    }
}
