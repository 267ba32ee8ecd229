using ActorQueue.Hosting;
using ActorQueue.Runtime;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorQueue.Tests.Hosting;

/// <summary>
/// Settings bound from configuration are read whole or refused whole: a value that does not parse, a key ActorQueue
/// does not know, or a value out of range fails the host's start with an <see cref="ArgumentException"/> naming the key
/// and the value. (The configuration binder dropped a limiter or queue whose value did not parse, and ignored
/// misspelled keys: the host started without it, or with its defaults.)
/// </summary>
[Collection(HostingCollection.Name)]
public class HostingConfigurationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddActorQueue(builder.Configuration.GetSection(ActorQueueOptions.SectionName));
        return builder.Build();
    }

    /// <summary>Starts a host on <paramref name="settings"/>, expecting its start to fail; returns the error.</summary>
    private static async Task<ArgumentException> StartFails(Dictionary<string, string?> settings)
    {
        using var host = BuildHost(settings);
        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => host.StartAsync().WaitAsync(Bound));
        Assert.Null(ActorQueueRuntime.Ambient); // a host that failed to start is nobody's default
        await host.StopAsync().WaitAsync(Bound);
        return error;
    }

    [Theory]
    [InlineData("ActorQueue:Limiters:llm:MaxRunning", "four")]
    [InlineData("ActorQueue:Limiters:llm:MaxQueued", "1e3")]
    [InlineData("ActorQueue:Queues:q:MaxSize", "ten")]
    [InlineData("ActorQueue:Queues:q:ConcurrencyLimit", "99999999999")]
    [InlineData("ActorQueue:Queues:q:PutTimeout", "five seconds")]
    [InlineData("ActorQueue:UseAsDefaultSystem", "sometimes")]
    public async Task A_value_that_does_not_parse_fails_the_start_naming_its_key_and_value(string key, string value)
    {
        var error = await StartFails(new() { [key] = value });

        Assert.Equal(key, error.ParamName);
        Assert.Contains($"'{value}'", error.Message);
    }

    /// <summary>A whole number that does not parse is refused with the setting's own range (it said "from -2147483648" for every one).</summary>
    [Theory]
    [InlineData("ActorQueue:Limiters:llm:MaxRunning", "four", 1)]
    [InlineData("ActorQueue:Limiters:llm:MaxQueued", "1e3", 0)]
    [InlineData("ActorQueue:Queues:q:MaxSize", "ten", 1)]
    [InlineData("ActorQueue:Queues:q:ConcurrencyLimit", "99999999999", 1)]
    public async Task A_whole_number_that_does_not_parse_is_refused_with_its_settings_range(string key, string value, int minimum)
    {
        var error = await StartFails(new() { [key] = value });

        Assert.Contains($"a whole number from {minimum} to {int.MaxValue}", error.Message);
    }

    [Theory]
    [InlineData("ActorQueue:Limiters:llm:MaxRuning", "ActorQueue:Limiters:llm:MaxRuning", "MaxRunning")]
    [InlineData("ActorQueue:Queues:q:Limter", "ActorQueue:Queues:q:Limter", "Limiter")]
    [InlineData("ActorQueue:Limiter:llm:MaxRunning", "ActorQueue:Limiter", "Limiters")]
    [InlineData("ActorQueue:Queues:q:MaxSize:x", "ActorQueue:Queues:q:MaxSize", "a value")]
    public async Task A_key_ActorQueue_does_not_know_fails_the_start_naming_it_and_the_known_ones(string key, string named, string known)
    {
        var error = await StartFails(new() { [key] = "4" });

        Assert.Equal(named, error.ParamName);
        Assert.Contains(known, error.Message);
    }

    [Fact]
    public async Task A_limiter_given_a_value_in_place_of_its_settings_fails_the_start_naming_it()
    {
        var error = await StartFails(new() { ["ActorQueue:Limiters:llm"] = "4" });

        Assert.Equal("ActorQueue:Limiters:llm", error.ParamName);
        Assert.Contains("MaxRunning", error.Message);
    }

    [Fact]
    public async Task A_negative_put_timeout_fails_the_start_not_the_first_GetQueue_naming_its_key()
    {
        var error = await StartFails(new() { ["ActorQueue:Queues:q:PutTimeout"] = "-00:00:01" });

        Assert.IsType<ArgumentOutOfRangeException>(error);
        Assert.Equal("ActorQueue:Queues:q:PutTimeout", error.ParamName);
        Assert.Contains("-00:00:01", error.Message);
    }

    /// <summary>
    /// A bare number is what TimeSpan.TryParse reads as days ("100" waited 100 days, past the timers' cap: for ever;
    /// "5" and "0" are in range as days, so only the format check refuses them), and a duration past 49.7 days is what
    /// timers cannot wait: both fail the start naming the key and the value.
    /// </summary>
    [Theory]
    [InlineData("100")]
    [InlineData("5")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("50.00:00:00")]
    [InlineData("10675199.02:48:05.4775807")]
    public async Task A_put_timeout_that_is_a_bare_number_or_past_what_timers_wait_fails_the_start_naming_its_key_and_value(string value)
    {
        var error = await StartFails(new() { ["ActorQueue:Queues:q:PutTimeout"] = value });

        Assert.Equal("ActorQueue:Queues:q:PutTimeout", error.ParamName);
        Assert.Contains(value, error.Message);
    }

    [Fact]
    public async Task Keys_match_whatever_their_case_and_empty_optional_values_mean_not_set()
    {
        using var host = BuildHost(new()
        {
            ["actorqueue:limiters:llm:maxrunning"] = "3",
            ["ActorQueue:Limiters:llm:MaxQueued"] = "",
            ["ActorQueue:Queues:q:PUTTIMEOUT"] = "00:00:02",
            ["ActorQueue:Queues:q:maxSize"] = "7",
            ["ActorQueue:Queues:q:Limiter"] = "llm",
            ["ActorQueue:UseAsDefaultSystem"] = "false",
        });
        await host.StartAsync().WaitAsync(Bound);
        var registry = host.Services.GetRequiredService<ActorQueueRegistry>();

        var limiter = registry.GetLimiter("llm");
        Assert.Equal(3, limiter.MaxRunning);
        Assert.Null(limiter.MaxQueued);
        var queue = registry.GetQueue<int>("q");
        Assert.Equal(TimeSpan.FromSeconds(2), queue.Queue.DefaultPutTimeout);
        Assert.Equal(7, queue.Queue.Capacity);
        Assert.Null(ActorQueueRuntime.Ambient); // UseAsDefaultSystem = false took

        await host.StopAsync().WaitAsync(Bound);
    }
}
