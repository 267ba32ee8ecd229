using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
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

/// <summary>The telemetry half of the review: ActorQueue's meter against the application's metrics listeners.</summary>
public sealed class TelemetryRound2ReviewTests
{
    /// <summary>
    /// FINDING (one bad listener disables the library for the process). ActorQueue's instruments are static, created
    /// by <c>ActorQueueTelemetry</c>'s (and <c>RateTelemetry</c>'s) type initialiser, and .NET publishes an instrument to
    /// every started <c>MeterListener</c>'s <c>InstrumentPublished</c> inside <c>Meter.CreateCounter</c>, letting a
    /// throw out. A listener whose <c>InstrumentPublished</c> throws once for an ActorQueue instrument (a filter with a
    /// bug, such as reading <c>instrument.Meter.Version!</c>, which ActorQueue's meter leaves null), started before the
    /// library's first use, made the type initialiser fail: <c>TypeInitializationException</c> on every later limiter,
    /// queue or span for the life of the process, against README's "A listener that throws costs its measurement, never a
    /// caller or an item". Reproduced on a fresh load of ActorQueue.Actors (a collectible load context, since this
    /// process already initialised its own): the listener throws on the first instrument published on this thread.
    /// Expected: the telemetry types initialise; the instrument whose publication threw records nothing.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_listener_that_throws_when_an_instrument_is_published_does_not_break_the_telemetry_types(bool throwsOnce)
    {
        var armed = new ThreadLocal<bool>();
        var threw = 0;
        var published = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (armed.Value && instrument.Meter.Name == ActorQueueTelemetry.Name)
                {
                    Interlocked.Increment(ref published);
                    if (!throwsOnce || Interlocked.Exchange(ref threw, 1) == 0)
                    {
                        throw new InvalidOperationException($"listener failed on {instrument.Name}");
                    }
                }
            },
        };
        listener.Start();
        var fresh = new AssemblyLoadContext("review-fresh-telemetry", isCollectible: true);
        try
        {
            var actors = fresh.LoadFromAssemblyPath(typeof(ActorQueueTelemetry).Assembly.Location);
            armed.Value = true;
            foreach (var name in new[] { typeof(ActorQueueTelemetry).FullName!, "ActorQueue.Actors.RateTelemetry" })
            {
                RuntimeHelpers.RunClassConstructor(actors.GetType(name, throwOnError: true)!.TypeHandle);
            }

            armed.Value = false;
            var meter = (Meter)actors.GetType(typeof(ActorQueueTelemetry).FullName!)!.GetProperty(nameof(ActorQueueTelemetry.Meter))!.GetValue(null)!;
            Assert.Equal(ActorQueueTelemetry.Name, meter.Name);

            // Once: the instrument whose publication threw is published again, and every instrument reaches the listeners.
            // Always: each is tried twice, then made where no listener hears it (it records nothing).
            const int Instruments = 19 + 4; // ActorQueueTelemetry's (actorqueue.queue.withdrawn the 19th, round 53), RateTelemetry's
            Assert.Equal(throwsOnce ? Instruments + 1 : 2 * Instruments, published);
        }
        finally
        {
            armed.Value = false;
            fresh.Unload();
        }
    }

    /// <summary>
    /// FINDING (as above, for traces). <c>ActorQueueTelemetry.Source</c> is made in the same type initialiser, and .NET asks
    /// every <c>ActivityListener</c>'s <c>ShouldListenTo</c> inside <c>new ActivitySource(...)</c>, letting a throw out:
    /// one throw from a listener's filter at the library's first use failed the type initialiser for the life of the
    /// process (every limiter, queue and span). Expected: the source is made again, and the types initialise.
    /// </summary>
    [Fact]
    public void An_activity_listener_whose_filter_throws_once_does_not_break_the_telemetry_types()
    {
        var armed = new ThreadLocal<bool>();
        var threw = 0;
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => armed.Value && source.Name == ActorQueueTelemetry.Name && Interlocked.Exchange(ref threw, 1) == 0
                ? throw new InvalidOperationException("listener failed")
                : false,
        };
        ActivitySource.AddActivityListener(listener);
        var fresh = new AssemblyLoadContext("review-fresh-tracing", isCollectible: true);
        try
        {
            var telemetry = fresh.LoadFromAssemblyPath(typeof(ActorQueueTelemetry).Assembly.Location).GetType(typeof(ActorQueueTelemetry).FullName!, throwOnError: true)!;
            armed.Value = true;
            RuntimeHelpers.RunClassConstructor(telemetry.TypeHandle);
            armed.Value = false;

            Assert.Equal(1, threw);
            Assert.Equal(ActorQueueTelemetry.Name, ((ActivitySource)telemetry.GetProperty(nameof(ActorQueueTelemetry.Source))!.GetValue(null)!).Name);
        }
        finally
        {
            armed.Value = false;
            fresh.Unload();
        }
    }
}
