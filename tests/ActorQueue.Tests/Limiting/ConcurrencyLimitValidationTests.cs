using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

public class ConcurrencyLimitValidationTests : ActorQueueTestKit
{
    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void ConcurrencyLimit_rejects_max_running_below_one_naming_the_value(int maxRunning)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimit(maxRunning));

        Assert.Contains($"max_running must be >= 1, got {maxRunning}", ex.Message);
        Assert.Equal("MaxRunning", ex.ParamName);
        Assert.Equal(maxRunning, ex.ActualValue);
    }

    [Fact]
    public void ConcurrencyLimit_rejects_negative_max_queued_and_allows_zero()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimit(1, -1));

        Assert.Contains("max_queued must be >= 0, got -1", ex.Message);
        Assert.Equal("MaxQueued", ex.ParamName);
        Assert.Equal(0, new ConcurrencyLimit(1, 0).MaxQueued);
    }

    [Fact]
    public void ConcurrencyLimit_validates_with_expressions_too()
    {
        var limit = new ConcurrencyLimit(2, 5);

        Assert.Throws<ArgumentOutOfRangeException>(() => limit with { MaxRunning = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => limit with { MaxQueued = -2 });
        Assert.Equal(new ConcurrencyLimit(3, 5), limit with { MaxRunning = 3 });
    }

    [Fact]
    public void Limiter_constructor_names_the_bad_parameter_and_value()
    {
        var running = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimiter(0, system: Sys));
        var queued = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimiter(1, -5, system: Sys));
        var fromLimit = Assert.Throws<ArgumentOutOfRangeException>(() => ConcurrencyLimiter.FromLimit(-1, system: Sys));

        Assert.Equal("maxRunning", running.ParamName);
        Assert.Contains("max_running must be >= 1, got 0", running.Message);
        Assert.Equal("maxQueued", queued.ParamName);
        Assert.Contains("max_queued must be >= 0, got -5", queued.Message);
        Assert.Equal("limit", fromLimit.ParamName);
    }

    [Fact]
    public async Task Null_arguments_are_rejected_by_name()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);

        Assert.Equal("source", Assert.Throws<ArgumentNullException>(() => limiter.AcquireAsync(null!)).ParamName);
        Assert.Equal("limit", Assert.Throws<ArgumentNullException>(() => ConcurrencyLimiter.FromLimit(null!, system: Sys)).ParamName);
        Assert.Equal("operation", (await Assert.ThrowsAsync<ArgumentNullException>(() => limiter.RunAsync<int>(null!))).ParamName);
        Assert.Equal("stream", Assert.Throws<ArgumentNullException>(() => limiter.WrapStream<int>(null!)).ParamName);
        Assert.Equal("source", Assert.Throws<ArgumentNullException>(() => ConcurrencyContext.EnterAsync(limiter, null!)).ParamName);
    }

    public static TheoryData<string, Action, string> BadLimitValues => new()
    {
        { "MaxRunning", () => _ = new ConcurrencyLimit(0), "max_running must be >= 1, got 0" },
        { "MaxQueued", () => _ = new ConcurrencyLimit(1) { MaxQueued = -2 }, "max_queued must be >= 0, got -2" },
        { "WaitTimeout", () => _ = new ConcurrencyLimit(1) { WaitTimeout = TimeSpan.FromSeconds(-1) }, "wait timeout must be >= 0 or infinite, got -00:00:01" },
        { "MaxConcurrent", () => _ = new ModelApiLimiterOptions(0, 1, 1, TimeSpan.FromMinutes(1)), "MaxConcurrent must be >= 1, got 0" },
        { "RequestsPerPeriod", () => _ = new ModelApiLimiterOptions(1, -1, 1, TimeSpan.FromMinutes(1)), "RequestsPerPeriod must be >= 1, got -1" },
        { "TokensPerPeriod", () => _ = new ModelApiLimiterOptions(1, 1, 0, TimeSpan.FromMinutes(1)), "TokensPerPeriod must be >= 1, got 0" },
        { "Period", () => _ = new ModelApiLimiterOptions(1, 1, 1, TimeSpan.Zero), "Period must be > 0 and finite, got 00:00:00" },
        { "MaxQueued", () => _ = new ModelApiLimiterOptions(1, 1, 1, TimeSpan.FromMinutes(1)) { MaxQueued = -1 }, "max_queued must be >= 0, got -1" },
        { "WaitTimeout", () => _ = new ModelApiLimiterOptions(1, 1, 1, TimeSpan.FromMinutes(1)) { WaitTimeout = TimeSpan.FromSeconds(-2) }, "wait timeout must be >= 0 or infinite, got -00:00:02" },
        { "SlidingWindowSegments", () => _ = new ModelApiLimiterOptions(1, 1, 1, TimeSpan.FromMinutes(1)) { SlidingWindowSegments = 0 }, "SlidingWindowSegments must be >= 1, got 0" },
        { "idleTimeout", () => _ = new PartitionedConcurrencyLimiter<int>(new ConcurrencyLimit(1), TimeSpan.Zero), "idleTimeout must be > 0 and finite, got 00:00:00" },
    };

    [Theory]
    [MemberData(nameof(BadLimitValues))]
    public void Both_kinds_of_limit_reject_a_bad_value_in_one_form_naming_the_parameter_and_the_value(string parameter, Action make, string message)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(make);

        Assert.Equal(parameter, error.ParamName);
        Assert.NotNull(error.ActualValue);
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }
}
