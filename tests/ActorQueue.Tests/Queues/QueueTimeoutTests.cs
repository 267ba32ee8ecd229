using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Configuration;
using static ActorQueue.Actors.QueueProtocol;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// Timeouts longer than timers can wait (about 49.7 days, <see cref="TimeSpan.MaxValue"/> included) mean no timeout,
/// wherever a queue takes one; negative ones other than <see cref="Timeout.InfiniteTimeSpan"/> are refused by name.
/// </summary>
public sealed class QueueTimeoutTests : ActorQueueTestKit
{
    public static TheoryData<TimeSpan> OverLong => new() { TimeSpan.MaxValue, TimeSpan.FromDays(50), TimeSpan.FromMilliseconds(uint.MaxValue) };

    [Fact]
    public async Task A_put_with_TimeSpan_MaxValue_waits_for_space_instead_of_failing_at_once()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 1, system: Sys);
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1));

        var forever = queue.PutAsync(2, TimeSpan.MaxValue);
        var brief = queue.PutAsync(3, TimeSpan.FromMilliseconds(1));

        // The brief put waits behind the first and times out; a first put that had a timer of its own (an overflowed
        // one fires at once) would have been answered before it.
        Assert.False(await Within(brief));
        Assert.False(forever.IsCompleted);
        Assert.Equal(1, await Within(queue.GetAsync()));
        Assert.True(await Within(forever));
    }

    [Fact]
    public async Task An_actors_put_with_TimeSpan_MaxValue_waits_for_space_instead_of_failing_at_once()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 1, system: Sys);
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1));
        var probe = CreateTestProbe();

        queue.Router.Tell(new Put(2, 1, TimeSpan.MaxValue), probe.Ref);
        queue.Router.Tell(new Put(3, 2, TimeSpan.FromMilliseconds(1)), probe.Ref);

        await probe.ExpectMsgAsync(new RejectedFull(2));
        Assert.Equal(1, await Within(queue.GetAsync()));
        await probe.ExpectMsgAsync(new Accepted(1));
    }

    [Theory]
    [MemberData(nameof(OverLong))]
    public void An_over_long_default_put_timeout_means_no_timeout(TimeSpan timeout)
    {
        using var queue = new BoundedQueue<int>(timeout: timeout, system: Sys);

        Assert.Equal(Timeout.InfiniteTimeSpan, queue.DefaultPutTimeout);
    }

    [Theory]
    [MemberData(nameof(OverLong))]
    public void Every_queue_timeout_argument_reads_an_over_long_value_as_no_timeout(TimeSpan timeout)
    {
        // PutAsync, StopAsync, the constructors and the distributed queue's puts all go through this one rule.
        Assert.Equal(Timeout.InfiniteTimeSpan, QueueArguments.PutTimeout(timeout, "timeout"));
    }

    [Fact]
    public void The_longest_timeout_timers_support_is_kept_as_it_is()
    {
        var longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

        Assert.Equal(longest, QueueArguments.PutTimeout(longest, "timeout"));
        Assert.Equal(TimeSpan.FromDays(49), QueueArguments.PutTimeout(TimeSpan.FromDays(49), "timeout"));
    }

    [Fact]
    public async Task Negative_timeouts_are_refused_naming_the_parameter_and_the_value()
    {
        await using var queue = new BoundedQueue<int>(system: Sys);
        await queue.StartAsync();

        var put = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.PutAsync(1, TimeSpan.FromSeconds(-2)));
        var stop = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = queue.StopAsync(TimeSpan.MinValue); });

        Assert.Equal("timeout", put.ParamName);
        Assert.Contains("got -00:00:02", put.Message);
        Assert.Equal("timeout", stop.ParamName);
        Assert.Equal(TimeSpan.MinValue, stop.ActualValue);
    }

    [Theory]
    [InlineData("put-timeout = 36500d, stop-timeout = 60d")]
    [InlineData("put-timeout = infinite, stop-timeout = infinite")]
    public void Over_long_configured_queue_timeouts_mean_no_timeout(string settingsText)
    {
        var config = ConfigurationFactory.ParseString($"actorqueue.queue {{ {settingsText} }}")
            .WithFallback(ActorQueueRuntime.DefaultConfig);

        var settings = ActorQueueSettings.From(config);

        Assert.Equal((Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan), (settings.QueuePutTimeout, settings.QueueStopTimeout));
    }

    [Fact]
    public void A_negative_configured_queue_timeout_is_refused_naming_the_setting()
    {
        var config = ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = -5s").WithFallback(ActorQueueRuntime.DefaultConfig);

        var ex = Assert.Throws<ArgumentException>(() => ActorQueueSettings.From(config));

        Assert.Equal("actorqueue.queue.stop-timeout", ex.ParamName);
        Assert.Contains("got '-5s'", ex.Message);
    }

    [Fact]
    public void An_over_long_heartbeat_period_is_refused_naming_the_property()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new QueueConfig { CapacityRefreshTime = TimeSpan.MaxValue });

        Assert.Equal("CapacityRefreshTime", ex.ParamName);
        Assert.Contains($"got {TimeSpan.MaxValue}", ex.Message);
    }
}
