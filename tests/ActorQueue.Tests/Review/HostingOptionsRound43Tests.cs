using System.Text;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 43 review of ActorQueue.Hosting's options: <c>Limiters</c> and <c>Queues</c> written as JSON arrays (which
/// configuration flattens to names "0", "1", …) and what the host does with configuration edited while it runs.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingOptionsRound43Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Configuration read from JSON documents, as appsettings.json and its environment overlay are (later ones win).</summary>
    private static IConfigurationRoot Json(params string[] documents)
    {
        var builder = new ConfigurationBuilder();
        foreach (var document in documents)
        {
            builder.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(document)));
        }

        return builder.Build();
    }

    /// <summary>Starts a host reading its options from <paramref name="section"/>, expecting the start to fail.</summary>
    private static async Task<ArgumentException> StartRefusedAsync(IConfiguration section)
    {
        using var host = HostingReviewTestsRound2.BuildHost(s => s.AddActorQueue(section));
        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => host.StartAsync().WaitAsync(Bound));
        Assert.Null(ActorQueueRuntime.Ambient); // nothing started
        return error;
    }

    /// <summary>
    /// A JSON array under <c>Limiters</c> or <c>Queues</c> (<c>"Limiters": [ { "MaxRunning": 4 } ]</c>) fails the start
    /// with an <see cref="ArgumentException"/> whose ParamName is the element's configuration key and whose message
    /// names the section, the name the array gave it and the shape wanted (an object keyed by name), whatever section
    /// the options are read from. With a queue naming a limiter the array was meant to define, that is the error
    /// reported, not the queue's missing limiter. Failed before: the first three cases started (Assert.ThrowsAnyAsync:
    /// no exception was thrown), running a limiter or queue named "0" that no <c>GetLimiter("llm")</c> finds; the last
    /// failed with ParamName "ActorQueue:Queues:fetch:Limiter" ("names 'llm', which is not in ActorQueue:Limiters"),
    /// which does not say the array was the mistake.
    /// </summary>
    [Theory]
    [InlineData("ActorQueue", """{ "ActorQueue": { "Limiters": [ { "MaxRunning": 4 } ] } }""", "ActorQueue:Limiters", "0")]
    [InlineData("ActorQueue", """{ "ActorQueue": { "Queues": [ { "MaxSize": 5 }, { "MaxSize": 6 } ] } }""", "ActorQueue:Queues", "0")]
    [InlineData("Jobs", """{ "Jobs": { "Limiters": [ { "MaxRunning": 4 } ] } }""", "Jobs:Limiters", "0")]
    [InlineData("ActorQueue", """{ "ActorQueue": { "Limiters": [ { "MaxRunning": 4 } ], "Queues": { "fetch": { "Limiter": "llm" } } } }""", "ActorQueue:Limiters", "0")]
    public async Task An_array_under_Limiters_or_Queues_fails_the_start_naming_the_path_and_the_shape_wanted(
        string sectionName, string json, string section, string name)
    {
        var error = await StartRefusedAsync(Json(json).GetSection(sectionName));

        Assert.Equal($"{section}:{name}", error.ParamName);
        Assert.Contains($"'{section}:{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"got '{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"{section} is an object keyed by name", error.Message, StringComparison.Ordinal);
        Assert.Contains($"e.g. \"{section.Split(':')[^1]}\": {{ \"", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// An array in one configuration source layered over an object in another (appsettings.json keyed by name,
    /// an environment's file with an array) is refused too, though the other names are good: the rule is on each name,
    /// not on the section as a whole. Failed before: no exception (Assert.ThrowsAnyAsync), the host running limiters
    /// "llm" and "0".
    /// </summary>
    [Fact]
    public async Task An_array_layered_over_names_from_another_source_is_refused_too()
    {
        var configuration = Json(
            """{ "ActorQueue": { "Limiters": { "llm": { "MaxRunning": 4 } } } }""",
            """{ "ActorQueue": { "Limiters": [ { "MaxRunning": 8 } ] } }""");

        var error = await StartRefusedAsync(configuration.GetSection(ActorQueueOptions.SectionName));

        Assert.Equal("ActorQueue:Limiters:0", error.ParamName);
    }

    /// <summary>
    /// A plain-number name set in code is refused by the registry made outside a host, as every other bad name is, and
    /// names containing digits are not (a guard against refusing too much: passed before as well). Failed before: no
    /// exception (Assert.ThrowsAny), a queue named "7" made on the system.
    /// </summary>
    [Fact]
    public void A_plain_number_name_set_in_code_is_refused_and_names_with_digits_are_not()
    {
        var numbered = new ActorQueueOptions();
        numbered.Queues["7"] = new QueueOptions();
        var error = Assert.ThrowsAny<ArgumentException>(() => ActorQueueOptionsValidation.Check(numbered));
        Assert.Equal("ActorQueue:Queues:7", error.ParamName);

        var named = new ActorQueueOptions();
        named.Limiters["llm2"] = new LimiterOptions();
        named.Limiters["-1"] = new LimiterOptions();
        named.Queues["tenant-42"] = new QueueOptions { Limiter = "llm2" };
        named.Queues["0x1"] = new QueueOptions();
        ActorQueueOptionsValidation.Check(named);
    }

    /// <summary>
    /// The options are read once, when the host starts: configuration edited and reloaded while the host runs (what
    /// an edited appsettings.json with reloadOnChange does) changes neither the limiters the registry made nor the
    /// options the container hands out. Pins what the README and <c>AddActorQueue</c>'s doc say; passed before (no
    /// behaviour changed).
    /// </summary>
    [Fact]
    public async Task Configuration_changed_while_the_host_runs_does_not_reach_its_limiters()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ActorQueue:Limiters:llm:MaxRunning"] = "4" })
            .Build();
        using var host = HostingReviewTestsRound2.BuildHost(s => s.AddActorQueue(configuration.GetSection(ActorQueueOptions.SectionName)));
        await host.StartAsync().WaitAsync(Bound);
        try
        {
            var registry = host.Services.GetRequiredService<ActorQueueRegistry>();
            Assert.Equal(4, registry.GetLimiter("llm").MaxRunning);

            configuration["ActorQueue:Limiters:llm:MaxRunning"] = "8";
            configuration["ActorQueue:Limiters:other:MaxRunning"] = "2";
            configuration.Reload();

            Assert.Equal("8", configuration["ActorQueue:Limiters:llm:MaxRunning"]); // the configuration did change
            Assert.Equal(4, registry.GetLimiter("llm").MaxRunning);
            Assert.Throws<KeyNotFoundException>(() => registry.GetLimiter("other"));
            Assert.Equal(4, host.Services.GetRequiredService<IOptionsMonitor<ActorQueueOptions>>().CurrentValue.Limiters["llm"].MaxRunning);
        }
        finally
        {
            await host.StopAsync().WaitAsync(Bound);
        }
    }
}
