using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Adversarial second review of how ActorQueue fits a .NET application (ActorQueue.Hosting's options and their
/// validation, configuration binding, start and stop against the Generic Host) and of its OpenTelemetry surface, as a
/// user of Microsoft.Extensions libraries expects them to behave. Each test named as a finding failed on the reviewed
/// code. (<see cref="HostingReviewTests"/> and <see cref="HostingReviewTestsRound2"/> hold the earlier reviews.)
/// </summary>
[Collection(HostingCollection.Name)]
public class HostingTelemetryRound2ReviewTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>A bare Generic Host (no default configuration sources or logging) with <paramref name="services"/>.</summary>
    private static IHost BuildHost(Action<IServiceCollection> services) => new HostBuilder().ConfigureServices(services).Build();

    private static IConfiguration Settings(string key, string value) =>
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();

    /// <summary>
    /// FINDING (a bad configuration starts the application before failing it). ActorQueue's settings were checked only
    /// when its own hosted service started, i.e. after every hosted service registered before <c>AddActorQueue</c> had
    /// started, Akka.Hosting's actor system included (<c>AddAkka</c> comes first by design). A host with
    /// <c>ActorQueue:Limiters:llm:MaxRunning = 0</c> (or a value that does not parse, or a misspelled key) therefore
    /// started the actor system, ran its <c>WithActors</c> start-up and started the application's earlier services (a
    /// consumer begins taking messages) and only then failed, leaving them to a stop that a failed start never gets.
    /// Microsoft.Extensions.Options' <c>ValidateOnStart</c> fails a host before any hosted service starts. Observed:
    /// the probe service's StartAsync and the actor system's start both ran. Expected: neither did; the start fails with
    /// the same exception naming the key.
    /// </summary>
    [Theory]
    [InlineData("ActorQueue:Limiters:llm:MaxRunning", "0")]
    [InlineData("ActorQueue:Limiters:llm:MaxRunning", "four")]
    [InlineData("ActorQueue:Limiters:llm:MaxRuning", "4")]
    [InlineData("ActorQueue:Queues:q:Limiter", "nope")]
    public async Task A_bad_setting_fails_the_start_before_any_hosted_service_or_the_actor_system_starts(string key, string value)
    {
        var earlier = new StartRecorder();
        var systemStarted = false;
        using var host = BuildHost(s => s
            .AddSingleton<IHostedService>(earlier)
            .AddAkka("review-validate-on-start", b => b.WithActorQueue().WithActors((_, _) => systemStarted = true))
            .AddActorQueue(Settings(key, value).GetSection(ActorQueueOptions.SectionName)));

        var error = await Record.ExceptionAsync(() => host.StartAsync().WaitAsync(Bound));

        Assert.True(error is ArgumentException or InvalidOperationException, $"the start failed with {error}");
        Assert.Contains(key, error.Message);
        Assert.False(earlier.Started, "a hosted service registered before AddActorQueue started on an invalid ActorQueue configuration");
        Assert.False(systemStarted, "the actor system started on an invalid ActorQueue configuration");
        Assert.Null(ActorQueueRuntime.Ambient);
    }

    /// <summary>
    /// FINDING. README: "An empty optional value means not set", and so it is for every setting but
    /// <c>UseAsDefaultSystem</c>: <c>"UseAsDefaultSystem": ""</c> (an environment variable
    /// <c>ActorQueue__UseAsDefaultSystem=</c> left empty by a deployment template) failed the start with
    /// "must be true or false, got ''". Expected: not set, so its default (true) holds.
    /// </summary>
    [Fact]
    public async Task An_empty_UseAsDefaultSystem_means_not_set_as_every_optional_value_does()
    {
        using var host = BuildHost(s => s.AddActorQueue(Settings("ActorQueue:UseAsDefaultSystem", string.Empty).GetSection(ActorQueueOptions.SectionName)));

        await host.StartAsync().WaitAsync(Bound);
        var system = host.Services.GetRequiredService<ActorQueueRegistry>().System;
        Assert.Same(system, ActorQueueRuntime.Ambient); // the default, true, holds
        await host.StopAsync().WaitAsync(Bound);
    }

    /// <summary>A hosted service that records whether it was started.</summary>
    private sealed class StartRecorder : IHostedService
    {
        public bool Started { get; private set; }

        public Task StartAsync(CancellationToken cancellationToken)
        {
            Started = true;
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
