using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of ActorQueue.Hosting (the registry, the hosted service, the configuration reader and what they hand to a
/// Generic Host): each test fails on the reviewed code for a defect.
/// </summary>
[Collection(HostingCollection.Name)]
public class HostingReviewTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static IHost BuildHost(Action<IServiceCollection> services)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(5));
        services(builder.Services);
        return builder.Build();
    }

    private static IConfiguration Settings(Dictionary<string, string?> settings) => new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

    private static ActorQueueOptions OneQueue()
    {
        var options = new ActorQueueOptions();
        options.Queues["q"] = new QueueOptions();
        return options;
    }

    /// <summary>
    /// FINDING. A queue asked for while the registry stops escapes the stop: GetQueue checks "disposed" before it makes
    /// the queue and adds it to the registry after, with nothing tying the two to StopAsync, which enumerates the queues
    /// in between. Reproduce: GetQueue("q") on one thread gets past the check (held here in the queue's logger factory,
    /// the first thing Create does), the registry's StopAsync runs to completion, then GetQueue finishes. Observed: it
    /// returns a live queue that starts and takes items after the host "stopped" its queues; nothing will ever stop or
    /// dispose it (StopAsync is done, a second StopAsync/DisposeAsync returns at once), so on the host's shutdown its
    /// workers are not stopped before the actor system terminates. Expected: GetQueue throws ObjectDisposedException
    /// (as documented for "the host has stopped"), or the stop waits for and stops the queue being made.
    /// (ActorQueueRegistry.GetQueue / StopAsync.)
    /// </summary>
    [Fact]
    public async Task A_queue_asked_for_while_the_registry_stops_is_not_handed_out_live_after_the_stop()
    {
        var system = ActorQueueRuntime.Create("review-hosting-race");
        WorkQueue<int>? escaped = null;
        try
        {
            var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var registry = new ActorQueueRegistry(system, OneQueue(), new GatedLoggerFactory("ActorQueue.Queues.q", entered, gate.Task));
            var get = Task.Run(() => registry.GetQueue<int>("q"));
            await entered.Task.WaitAsync(Bound);

            await registry.StopAsync(CancellationToken.None).WaitAsync(Bound);
            gate.SetResult();
            var refused = await Record.ExceptionAsync(async () =>
            {
                escaped = await get.WaitAsync(Bound);
                await escaped.StartAsync().WaitAsync(Bound);
            });

            Assert.True(refused is not null,
                $"after the registry's StopAsync completed, GetQueue handed out a queue that started (status {escaped?.Status}); the registry will never stop or dispose it");
        }
        finally
        {
            if (escaped is not null)
            {
                await escaped.DisposeAsync().AsTask().WaitAsync(Bound);
            }

            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// FINDING. A host that fails to start after ActorQueue's hosted service started stays the process-wide default
    /// system for ever. ActorQueueHostedService.StartAsync makes the host's system the default; only its StopAsync
    /// releases that, and a Generic Host whose start fails (a hosted service registered later throws) is disposed
    /// without StopAsync (Host.RunAsync does exactly that). Observed: after the host is disposed and its actor system
    /// terminated, ActorQueueRuntime.Default is still that terminated system, so every facade created later without
    /// <c>system:</c> is made on a dead system (and the embedded default never starts). Expected: no default left once
    /// the host is disposed (e.g. the hosted service or the registry releases the scope on disposal too).
    /// (ActorQueueHostedService: _defaultScope released only in StopAsync.)
    /// </summary>
    [Fact]
    public async Task A_host_whose_start_fails_after_ActorQueue_started_is_not_left_the_default_system_once_disposed()
    {
        var host = BuildHost(s => s.AddActorQueue().AddHostedService<FailsToStart>());
        var hosted = host.Services.GetServices<IHostedService>().OfType<ActorQueueHostedService>().Single();
        try
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(Bound));
            await ((IAsyncDisposable)host).DisposeAsync().AsTask().WaitAsync(Bound);

            var left = ActorQueueRuntime.Ambient;
            Assert.True(left is null,
                $"the disposed host's actor system '{left?.Name}' (terminated: {left?.WhenTerminated.IsCompleted}) is still the facades' default");
        }
        finally
        {
            await hosted.StopAsync(CancellationToken.None).WaitAsync(Bound); // releases the default for the tests after this one
        }
    }

    /// <summary>
    /// FINDING. A second stop or a disposal while the registry's StopAsync is under way completes at once, before
    /// anything has stopped: StopAsync sets its flag and returns for every caller but the first. That is the container
    /// disposing the registry (DisposeAsync) concurrently with, or after an abandoned, host StopAsync, or two threads
    /// disposing it. Observed: DisposeAsync's task is complete while the queue is still Stopping and its worker still
    /// runs. Expected: every StopAsync/DisposeAsync completes when everything has stopped, as documented ("A task that
    /// completes when everything has stopped") and as WorkQueue's second DisposeAsync now does.
    /// (ActorQueueRegistry.StopAsync: Interlocked.Exchange then return.)
    /// </summary>
    [Fact]
    public async Task DisposeAsync_while_StopAsync_is_under_way_completes_only_when_everything_has_stopped()
    {
        var system = ActorQueueRuntime.Create("review-hosting-double-stop");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var registry = new ActorQueueRegistry(system, OneQueue(), NullLoggerFactory.Instance);
            var queue = registry.GetQueue<int>("q");
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.ProcessAsync(async (_, _) =>
            {
                running.TrySetResult();
                await release.Task; // a worker finishing its item, as a stop lets it
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);

            var first = registry.StopAsync(CancellationToken.None);
            var second = registry.DisposeAsync().AsTask();
            var (firstDone, secondDone, status) = (first.IsCompleted, second.IsCompleted, queue.Status);
            release.SetResult();
            await Task.WhenAll(first, second).WaitAsync(Bound);

            Assert.False(secondDone && !firstDone,
                $"DisposeAsync completed while the first StopAsync had not (queue {status}, its worker still running)");
        }
        finally
        {
            release.TrySetResult();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// FINDING. A value out of range in a section bound under another name is reported under a key that is not in the
    /// application's configuration. The configuration reader names the real path (setting.Path) for a value that does
    /// not parse, but the registry's range checks (and the Limiter reference check) build the key from the constant
    /// "ActorQueue:…". Reproduce: AddActorQueue(configuration.GetSection("Jobs")) with Jobs:Limiters:llm:MaxRunning = 0.
    /// Observed: ParamName "ActorQueue:Limiters:llm:MaxRunning". Expected: "Jobs:Limiters:llm:MaxRunning", the key the
    /// user has to fix (as "four" in the same place is reported). (ActorQueueRegistry.Key / AtLeast / Validate.)
    /// </summary>
    [Fact]
    public async Task A_value_out_of_range_in_a_section_bound_under_another_name_is_reported_under_its_own_key()
    {
        var jobs = Settings(new() { ["Jobs:Limiters:llm:MaxRunning"] = "0" }).GetSection("Jobs");
        using var host = BuildHost(s => s.AddActorQueue(jobs));

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => host.StartAsync().WaitAsync(Bound));
        await host.StopAsync().WaitAsync(Bound);

        Assert.Equal("Jobs:Limiters:llm:MaxRunning", error.ParamName);
    }

    /// <summary>
    /// FINDING. The container that holds the registry cannot be disposed synchronously: ActorQueueRegistry implements
    /// only IAsyncDisposable, and Microsoft.Extensions.DependencyInjection's ServiceProvider.Dispose() throws
    /// InvalidOperationException ("only implements IAsyncDisposable") for such a singleton, stopping there, so the
    /// services created before it (the ActorSystem) are not disposed either. Reproduce: AddActorQueue on a plain
    /// ServiceCollection, resolve the registry, Dispose() the provider (a `using var provider = …` does this).
    /// Expected: disposal completes (the registry also implements IDisposable, stopping without waiting, as WorkQueue.Dispose).
    /// (ActorQueueRegistry : IAsyncDisposable only.)
    /// </summary>
    [Fact]
    public async Task A_service_provider_holding_the_registry_can_be_disposed_synchronously()
    {
        var provider = new ServiceCollection().AddLogging()
            .AddActorQueue(o => o.Limiters["l"] = new LimiterOptions { MaxRunning = 1 })
            .BuildServiceProvider();
        var registry = provider.GetRequiredService<ActorQueueRegistry>();
        try
        {
            var error = Record.Exception(provider.Dispose);

            Assert.True(error is null, $"ServiceProvider.Dispose() threw {error?.GetType().Name}: {error?.Message}");
        }
        finally
        {
            await registry.DisposeAsync().AsTask().WaitAsync(Bound);
            await registry.System.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// FINDING. A PutTimeout written as a bare number is silently read as days: the reader uses TimeSpan.TryParse, for
    /// which "100" is 100.00:00:00, past the 49.7-day cap, so the queue's puts wait for ever instead of 100 ms (or
    /// 100 s). The reader's own message asks for "a duration such as 00:00:05 (hh:mm:ss)" but takes a bare number
    /// without complaint. Expected: the start fails naming ActorQueue:Queues:q:PutTimeout and the value (or the number
    /// is read in a documented unit). (ActorQueueConfiguration.Duration.)
    /// </summary>
    [Fact]
    public async Task A_PutTimeout_given_as_a_bare_number_fails_the_start_rather_than_being_read_as_days()
    {
        var section = Settings(new() { ["ActorQueue:Queues:q:PutTimeout"] = "100" }).GetSection(ActorQueueOptions.SectionName);
        using var host = BuildHost(s => s.AddActorQueue(section));

        var error = await Record.ExceptionAsync(() => host.StartAsync().WaitAsync(Bound));
        var readAs = error is null ? host.Services.GetRequiredService<ActorQueueRegistry>().GetQueue<int>("q").Queue.DefaultPutTimeout : default(TimeSpan?);
        await host.StopAsync().WaitAsync(Bound);

        Assert.True(error is ArgumentException { ParamName: "ActorQueue:Queues:q:PutTimeout" },
            $"PutTimeout '100' was accepted and read as {readAs} (error: {error?.Message})");
    }

    /// <summary>
    /// FINDING. A limiter's name is a configuration key, and configuration keys match whatever their case (README:
    /// "Keys match whatever their case"), but the registry keeps and looks up names ordinally. When one limiter's
    /// settings come from two sources (appsettings.json writes "llm", an environment variable
    /// ActorQueue__Limiters__LLM__MaxQueued overrides one setting), the merged configuration has one key whose casing
    /// is whichever source won, here "LLM"; the queue's Limiter "llm" and GetLimiter("llm") then no longer find it.
    /// Observed: the host fails to start ("ActorQueue:Queues:fetch:Limiter names 'llm', which is not in
    /// ActorQueue:Limiters", which it is). Expected: limiter (and queue) names compared as configuration compares them,
    /// case-insensitively. (ActorQueueOptions.Limiters/Queues: StringComparer.Ordinal; ActorQueueRegistry lookups.)
    /// </summary>
    [Fact]
    public async Task A_limiter_whose_settings_come_from_two_sources_in_different_case_is_still_found_by_its_name()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ActorQueue:Limiters:llm:MaxRunning"] = "4",
                ["ActorQueue:Queues:fetch:Limiter"] = "llm",
            })
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ActorQueue:Limiters:LLM:MaxQueued"] = "10" }) // an environment override
            .Build();
        using var host = BuildHost(s => s.AddActorQueue(configuration.GetSection(ActorQueueOptions.SectionName)));

        var error = await Record.ExceptionAsync(() => host.StartAsync().WaitAsync(Bound));
        var found = error is null ? Record.Exception(() => host.Services.GetRequiredService<ActorQueueRegistry>().GetLimiter("llm")) : null;
        await host.StopAsync().WaitAsync(Bound);

        Assert.True(error is null && found is null, $"the limiter 'llm' is not found: {(error ?? found)?.Message}");
    }

    private sealed class FailsToStart : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("this service cannot start");

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>A logger factory that holds the caller asking for <paramref name="category"/> until <paramref name="gate"/> completes.</summary>
    private sealed class GatedLoggerFactory(string category, TaskCompletionSource entered, Task gate) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName)
        {
            if (categoryName == category)
            {
                entered.TrySetResult();
                gate.Wait(); // the test's own thread (Task.Run), held on purpose
            }

            return NullLogger.Instance;
        }

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }
}
