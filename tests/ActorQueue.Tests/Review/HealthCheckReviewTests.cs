using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of <c>services.AddHealthChecks().AddActorQueue()</c> as a Kubernetes probe would use it: what it says before
/// the host has started and while it stops, whether "turns callers away" is exactly when a new acquire is refused, and
/// that a check changes nothing on the actor system it reads.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HealthCheckReviewTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<HealthCheckResult> CheckAsync(IHealthCheck check) =>
        check.CheckHealthAsync(new HealthCheckContext { Registration = new HealthCheckRegistration("actorqueue", check, null, null) });

    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(Bound);
        return report.Entries[ActorQueueHealthChecksBuilderExtensions.DefaultName];
    }

    /// <summary>Runs <paramref name="test"/> with a registry of <paramref name="options"/> on a system of its own, then stops both.</summary>
    private static async Task WithRegistryAsync(string name, ActorQueueOptions options, Func<ActorSystem, ActorQueueRegistry, Task> test)
    {
        var system = ActorQueueRuntime.Create(name);
        try
        {
            await using var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);
            await test(system, registry);
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    private static ActorQueueOptions Limiter(int maxRunning, int? maxQueued)
    {
        var options = new ActorQueueOptions();
        options.Limiters["llm"] = new LimiterOptions { MaxRunning = maxRunning, MaxQueued = maxQueued };
        return options;
    }

    [Fact]
    public Task A_limiter_whose_queue_is_full_behind_a_weighted_waiter_turns_callers_away_though_a_permit_is_free() =>
        WithRegistryAsync("hc-review-weighted", Limiter(maxRunning: 2, maxQueued: 1), async (_, registry) =>
        {
            var limiter = registry.GetLimiter("llm");
            var held = await limiter.AcquireAsync();
            var weighted = limiter.AcquireAsync(permits: 2).AsTask(); // one permit free, two asked: it waits, and fills the queue
            await Poll.UntilAsync(() => limiter.WaitingCount == 1, Bound, "the two-permit caller waits");
            Assert.Equal(1, limiter.RunningCount); // one of two permits held

            await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync().AsTask()); // no barging past a waiter: refused
            var entry = await CheckAsync(new ActorQueueHealthCheck(registry));

            Assert.Equal(HealthStatus.Degraded, entry.Status);
            Assert.Contains("limiter 'llm' turns new callers away (1 running, 1 waiting", entry.Description);
            await held.DisposeAsync();
            await (await weighted.WaitAsync(Bound)).DisposeAsync();
        });

    [Fact]
    public Task A_limiter_that_queues_nobody_turns_callers_away_exactly_while_every_permit_is_held() =>
        WithRegistryAsync("hc-review-unqueued", Limiter(maxRunning: 1, maxQueued: 0), async (_, registry) =>
        {
            var limiter = registry.GetLimiter("llm");
            var check = new ActorQueueHealthCheck(registry);
            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(check)).Status);

            var held = await limiter.AcquireAsync();
            await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync().AsTask());
            Assert.Equal(HealthStatus.Degraded, (await CheckAsync(check)).Status);

            await held.DisposeAsync();
            await Poll.UntilAsync(() => limiter.RunningCount == 0, Bound, "the permit is back");
            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(check)).Status);
        });

    [Fact]
    public Task A_limiter_the_application_disposed_turns_every_caller_away_and_degrades_the_check() =>
        WithRegistryAsync("hc-review-disposed-limiter", Limiter(maxRunning: 1, maxQueued: null), async (_, registry) =>
        {
            var limiter = (ConcurrencyLimiter)registry.GetLimiter("llm");
            await limiter.DisposeAsync();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => limiter.AcquireAsync().AsTask());

            var entry = await CheckAsync(new ActorQueueHealthCheck(registry));

            Assert.Equal(HealthStatus.Degraded, entry.Status);
            Assert.Equal("limiter 'llm' turns new callers away (0 running, 0 waiting: it is disposed)", entry.Description);
        });

    [Fact]
    public Task A_check_does_not_create_the_systems_coordinated_shutdown_and_so_installs_no_process_exit_hook() =>
        WithRegistryAsync("hc-review-coordinated-shutdown", Limiter(maxRunning: 1, maxQueued: null), async (system, registry) =>
        {
            // ActorQueue's HOCON sets run-by-clr-shutdown-hook = on: creating the extension hooks ProcessExit, which then
            // terminates the system on SIGTERM alongside the host's own stop. Nothing but the check would create it here.
            Assert.False(system.HasExtension<CoordinatedShutdown>());

            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(new ActorQueueHealthCheck(registry))).Status);

            Assert.False(system.HasExtension<CoordinatedShutdown>());
        });

    [Fact]
    public Task A_queue_disposed_by_the_application_degrades_the_check_and_one_restarted_after_a_stop_is_healthy_again()
    {
        var options = new ActorQueueOptions();
        options.Queues["fetch"] = new QueueOptions { MaxSize = 2 };
        options.Queues["mail"] = new QueueOptions { MaxSize = 2 };
        return WithRegistryAsync("hc-review-queues", options, async (_, registry) =>
        {
            var check = new ActorQueueHealthCheck(registry);
            var fetch = registry.GetQueue<int>("fetch");
            await fetch.StartAsync();
            await fetch.StopAsync(Bound);
            Assert.Equal(HealthStatus.Degraded, (await CheckAsync(check)).Status);
            await fetch.StartAsync(); // a restart
            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(check)).Status);

            var mail = registry.GetQueue<int>("mail");
            await mail.StartAsync();
            await mail.DisposeAsync();
            var entry = await CheckAsync(check); // reads a disposed queue's counts without throwing

            Assert.Equal(HealthStatus.Degraded, entry.Status);
            Assert.Equal("queue 'mail' is stopped (it takes no items)", entry.Description);
            Assert.Equal("Stopped", entry.Data["queue.mail.status"]);
        });
    }

    [Fact]
    public async Task Before_the_host_has_started_the_check_reports_the_failure_status_and_makes_no_actor_system()
    {
        var made = 0;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ActorSystem>(_ =>
        {
            Interlocked.Increment(ref made);
            return ActorQueueRuntime.Create("hc-review-before-start");
        });
        builder.Services.AddActorQueue(options => options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 });
        builder.Services.AddHealthChecks().AddActorQueue();
        using var host = builder.Build();
        try
        {
            var before = await CheckAsync(host);

            Assert.Equal(0, Volatile.Read(ref made)); // neither the system nor the registry and its limiters were made by a probe
            Assert.Equal(HealthStatus.Unhealthy, before.Status);
            Assert.Equal("ActorQueue's host has not started yet", before.Description);

            await host.StartAsync().WaitAsync(Bound);
            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);
            await host.StopAsync().WaitAsync(Bound);
        }
        finally
        {
            if (Volatile.Read(ref made) != 0)
            {
                await host.Services.GetRequiredService<ActorSystem>().Terminate().WaitAsync(Bound);
            }
        }
    }

    [Fact]
    public async Task Once_the_host_is_stopping_the_check_reports_the_failure_status_before_ActorQueue_itself_stops()
    {
        var stopEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseStop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddActorQueue(options => options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 });
        builder.Services.AddSingleton<IHostedService>(new GatedStop(stopEntered, releaseStop)); // after ActorQueue's: stops before it
        builder.Services.AddHealthChecks().AddActorQueue();
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Bound);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);

        var stop = host.StopAsync();
        await stopEntered.Task.WaitAsync(Bound); // the producer drains; ActorQueue's registry has not begun to stop
        var stopping = await CheckAsync(host);
        releaseStop.SetResult();
        await stop.WaitAsync(Bound);

        Assert.Equal(HealthStatus.Unhealthy, stopping.Status);
        Assert.Equal("ActorQueue's host is stopping (its queues and limiters stop next)", stopping.Description);
        Assert.Equal(0, stopping.Data["limiter.llm.running"]); // the counts are still there
    }

    [Fact]
    public async Task On_an_Akka_Hosting_system_a_shutdown_Akka_itself_runs_through_Terminate_is_reported_while_it_runs()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddAkka("hc-review-akka-hosting", akka => akka.WithActorQueue());
        builder.Services.AddActorQueue(options => options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 });
        builder.Services.AddHealthChecks().AddActorQueue();
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Bound);
        var system = host.Services.GetRequiredService<ActorSystem>();
        Assert.True(system.HasExtension<CoordinatedShutdown>()); // Akka.Hosting made it at its start: the check reads it, never makes it

        var hold = new TaskCompletionSource<Akka.Done>(TaskCreationOptions.RunContinuationsAsynchronously);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "hold", () => hold.Task);
        var terminated = system.Terminate(); // Akka's own shutdown (run-by-actor-system-terminate), not the host's
        var entry = await CheckAsync(host);
        hold.SetResult(Akka.Done.Instance);
        await terminated.WaitAsync(Bound);
        await host.StopAsync().WaitAsync(Bound);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal($"ActorQueue's actor system 'hc-review-akka-hosting' is shutting down ({CoordinatedShutdown.ActorSystemTerminateReason.Instance})", entry.Description);
    }

    /// <summary>A hosted service (a producer) whose stop waits on the test.</summary>
    private sealed class GatedStop(TaskCompletionSource entered, TaskCompletionSource release) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            entered.TrySetResult();
            return release.Task;
        }
    }
}
