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
        Assert.Equal(TimeSpan.MaxValue, window.NextAvailableAt(11, At(30)));
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
