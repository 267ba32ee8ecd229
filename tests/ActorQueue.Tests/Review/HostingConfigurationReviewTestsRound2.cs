using ActorQueue.Hosting;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second review of ActorQueue.Hosting (<see cref="HostingReviewTestsRound2"/>), its configuration: options set in code
/// against configuration bound after them, and the start's errors for a queue's limiter settings, which name the
/// configuration keys. Each test fails on the reviewed code for a defect.
/// </summary>
[Collection(HostingCollection.Name)]
public class HostingConfigurationReviewTestsRound2
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>A host with the services <paramref name="services"/> adds, as <see cref="HostingReviewTestsRound2"/> builds it.</summary>
    private static IHost BuildHost(Action<IServiceCollection> services) => HostingReviewTestsRound2.BuildHost(services);

    /// <summary>
    /// FINDING (XML doc contradicts behaviour). <c>AddActorQueue(Action&lt;ActorQueueOptions&gt; configure)</c> documents
    /// its delegate as setting the options "after any configuration binding", but it is a plain
    /// <c>OptionsBuilder.Configure</c>, run in registration order. Reproduce: <c>AddActorQueue(o =&gt; o.Limiters["llm"] =
    /// new LimiterOptions { MaxRunning = 2 })</c> then <c>AddActorQueue(configuration)</c> with
    /// <c>ActorQueue:Limiters:llm:MaxRunning = 8</c>. Observed: MaxRunning 8 (the configuration, bound after, wins).
    /// Expected per the doc: 2. A user relying on the doc to pin a value in code (a test, a safety cap) gets the
    /// configuration's. Location: src/Hosting/ActorQueueServiceCollectionExtensions.cs:47 and :52. Suggested fix: use
    /// <c>PostConfigure(configure)</c> (runs after every Configure, i.e. after binding), or reword the doc to "in
    /// registration order".
    /// </summary>
    [Fact]
    public async Task Options_set_in_code_apply_after_configuration_binding_as_documented()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ActorQueue:Limiters:llm:MaxRunning"] = "8" })
            .Build()
            .GetSection(ActorQueueOptions.SectionName);
        using var host = BuildHost(s => s.AddActorQueue(o => o.Limiters["llm"] = new LimiterOptions { MaxRunning = 2 }).AddActorQueue(configuration));
        await host.StartAsync().WaitAsync(Bound);
        var maxRunning = host.Services.GetRequiredService<ActorQueueRegistry>().GetLimiter("llm").MaxRunning;
        await host.StopAsync().WaitAsync(Bound);

        Assert.True(maxRunning == 2, $"the value set in code (2) was overridden by configuration bound after it: MaxRunning {maxRunning}");
    }

    /// <summary>
    /// FINDING (the one start error that names no configuration key). Every other refused setting names the key's path
    /// (ParamName and message, "ActorQueue:Queues:fetch:Limiter names 'llm', which is not in ActorQueue:Limiters"), as
    /// README promises for configuration errors; a queue that sets both <c>Limiter</c> and <c>ConcurrencyLimit</c>
    /// fails with an InvalidOperationException "Queue 'fetch' sets both Limiter ('llm') and ConcurrencyLimit (4); set
    /// one", naming neither key nor the section it was read from (wrong for a section bound as <c>Jobs</c>, where
    /// the user has to find <c>Jobs:Queues:fetch</c>). Reproduce: Jobs:Limiters:llm:MaxRunning = 2,
    /// Jobs:Queues:fetch:Limiter = llm, Jobs:Queues:fetch:ConcurrencyLimit = 4, <c>AddActorQueue(GetSection("Jobs"))</c>.
    /// Expected: the message names <c>Jobs:Queues:fetch:Limiter</c> and <c>Jobs:Queues:fetch:ConcurrencyLimit</c>
    /// (ideally an ArgumentException whose ParamName is one of them). Location: src/Hosting/ActorQueueRegistry.cs:230.
    /// Suggested fix: build the message with <c>Key("Queues", name, …)</c> as the neighbouring checks do.
    /// </summary>
    [Fact]
    public async Task A_queue_setting_both_Limiter_and_ConcurrencyLimit_fails_the_start_naming_the_keys()
    {
        var jobs = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Jobs:Limiters:llm:MaxRunning"] = "2",
                ["Jobs:Queues:fetch:Limiter"] = "llm",
                ["Jobs:Queues:fetch:ConcurrencyLimit"] = "4",
            })
            .Build()
            .GetSection("Jobs");
        using var host = BuildHost(s => s.AddActorQueue(jobs));

        var error = await Record.ExceptionAsync(() => host.StartAsync().WaitAsync(Bound));
        await host.StopAsync().WaitAsync(Bound);

        Assert.True(error?.Message.Contains("Jobs:Queues:fetch:", StringComparison.Ordinal) == true,
            $"the start failed with {error?.GetType().Name}: '{error?.Message}', naming no configuration key");
        // Bad configuration is bad input: an ArgumentException naming the key, as every other refused setting.
        Assert.Equal("Jobs:Queues:fetch:Limiter", Assert.IsType<ArgumentException>(error).ParamName);
    }

    /// <summary>A queue naming a limiter that is not configured: an <see cref="ArgumentException"/> naming the queue's key and the value.</summary>
    [Fact]
    public async Task A_queue_naming_an_unconfigured_limiter_fails_the_start_with_an_ArgumentException_naming_the_key()
    {
        var jobs = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Jobs:Queues:fetch:Limiter"] = "llm" })
            .Build()
            .GetSection("Jobs");
        using var host = BuildHost(s => s.AddActorQueue(jobs));

        var error = await Record.ExceptionAsync(() => host.StartAsync().WaitAsync(Bound));
        await host.StopAsync().WaitAsync(Bound);

        var refused = Assert.IsType<ArgumentException>(error);
        Assert.Equal("Jobs:Queues:fetch:Limiter", refused.ParamName);
        Assert.Contains("'llm'", refused.Message, StringComparison.Ordinal);
    }
}
