using System.Net;
using ActorQueue.Actors;
using ActorQueue.Hosting;
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Hosting;

/// <summary>
/// <c>services.AddHealthChecks().AddActorQueue()</c>: what the check reports for each state of the host's limiters,
/// queues and actor system, through the host's <see cref="HealthCheckService"/> and through ASP.NET Core's endpoint.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class ActorQueueHealthCheckTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>A started host with limiter <c>llm</c> (1 running, 1 queued) and queue <c>fetch</c> (2 items), and ActorQueue's check under <paramref name="failureStatus"/>.</summary>
    private static async Task<IHost> StartHostAsync(HealthStatus? failureStatus = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddActorQueue(options =>
        {
            options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1, MaxQueued = 1 };
            options.Queues["fetch"] = new QueueOptions { MaxSize = 2 };
        });
        builder.Services.AddHealthChecks().AddActorQueue(failureStatus: failureStatus, tags: ["ready"]);
        var host = builder.Build();
        await host.StartAsync().WaitAsync(Bound);
        return host;
    }

    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(Bound);
        return report.Entries[ActorQueueHealthChecksBuilderExtensions.DefaultName];
    }

    [Fact]
    public async Task A_running_host_is_healthy_with_every_limiters_and_made_queues_counts_in_the_data()
    {
        using var host = await StartHostAsync();
        var registry = host.Services.GetRequiredService<ActorQueueRegistry>();
        var queue = registry.GetQueue<int>("fetch");
        await queue.StartAsync();
        await using var lease = await registry.GetLimiter("llm").AcquireAsync();

        var entry = await CheckAsync(host);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(["ready"], entry.Tags);
        Assert.Equal(1, entry.Data["limiter.llm.running"]);
        Assert.Equal(0, entry.Data["limiter.llm.waiting"]);
        Assert.Equal("Processing", entry.Data["queue.fetch.status"]);
        Assert.Equal(0, entry.Data["queue.fetch.size"]);
        Assert.Equal(0L, entry.Data["queue.fetch.processed"]);
    }

    [Fact]
    public async Task A_limiter_that_turns_callers_away_degrades_the_check_until_its_queue_has_room()
    {
        using var host = await StartHostAsync();
        var limiter = host.Services.GetRequiredService<ActorQueueRegistry>().GetLimiter("llm");
        var holder = await limiter.AcquireAsync();
        var waiter = limiter.AcquireAsync().AsTask();
        await Poll.UntilAsync(() => limiter.WaitingCount == 1, Bound, "the second caller waits");

        var full = await CheckAsync(host);
        Assert.Equal(HealthStatus.Degraded, full.Status);
        Assert.Contains("limiter 'llm' turns new callers away (1 running, 1 waiting", full.Description);
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync().AsTask()); // what the check said

        await holder.DisposeAsync();
        await using var granted = await waiter.WaitAsync(Bound);
        await Poll.UntilAsync(() => limiter.WaitingCount == 0, Bound, "the waiter was granted");
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status); // one running, nobody waiting: a caller would queue
    }

    [Fact]
    public async Task A_full_queue_and_a_queue_stopped_while_the_host_runs_degrade_the_check_and_the_description_names_each()
    {
        using var host = await StartHostAsync();
        var queue = host.Services.GetRequiredService<ActorQueueRegistry>().GetQueue<int>("fetch");
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status); // idle: made, not started yet (the application's to start)
        await queue.StartAsync(); // no worker: the items stay queued
        Assert.True(await queue.PutAsync(1));
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status); // one of two: puts still go in

        Assert.True(await queue.PutAsync(2));
        var full = await CheckAsync(host);
        Assert.Equal(HealthStatus.Degraded, full.Status);
        Assert.Equal("queue 'fetch' is full (2 of 2: puts wait)", full.Description);

        await queue.StopAsync(Bound);
        var stopped = await CheckAsync(host);
        Assert.Equal(HealthStatus.Degraded, stopped.Status);
        Assert.Equal("queue 'fetch' is stopped (it takes no items)", stopped.Description);
        await Assert.ThrowsAsync<QueueStateException>(() => queue.PutAsync(3)); // what the check said
    }

    [Fact]
    public async Task A_terminated_actor_system_or_a_stopping_host_reports_the_registrations_failure_status()
    {
        using (var host = await StartHostAsync())
        {
            await host.Services.GetRequiredService<ActorQueueRegistry>().StopAsync(CancellationToken.None).WaitAsync(Bound); // as the host's stop does first
            var stopping = await CheckAsync(host);
            Assert.Equal(HealthStatus.Unhealthy, stopping.Status);
            Assert.Contains("stopping", stopping.Description);
        }

        using (var host = await StartHostAsync(failureStatus: HealthStatus.Degraded))
        {
            var system = host.Services.GetRequiredService<ActorSystem>();
            await system.Terminate().WaitAsync(Bound);
            var terminated = await CheckAsync(host);
            Assert.Equal(HealthStatus.Degraded, terminated.Status); // the registration's failure status, as set
            Assert.Equal($"ActorQueue's actor system '{system.Name}' has terminated", terminated.Description);
        }
    }

    [Fact]
    public async Task Coordinated_shutdown_under_way_is_reported_before_the_system_has_terminated()
    {
        using var host = await StartHostAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        var holdShutdown = new TaskCompletionSource<Akka.Done>(TaskCreationOptions.RunContinuationsAsynchronously);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "hold", () => holdShutdown.Task);
        var shutdown = CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);

        var entry = await CheckAsync(host);
        holdShutdown.SetResult(Akka.Done.Instance);
        await shutdown.WaitAsync(Bound);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("is shutting down", entry.Description);
    }

    [Fact]
    public async Task Asp_net_cores_health_endpoint_answers_200_while_running_and_503_once_the_actor_system_has_terminated()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddActorQueue(options => options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 });
        builder.Services.AddHealthChecks().AddActorQueue();
        await using var app = builder.Build();
        app.MapHealthChecks("/health");
        await app.StartAsync().WaitAsync(Bound);
        using var client = app.GetTestServer().CreateClient();

        var running = await client.GetAsync("/health").WaitAsync(Bound);
        Assert.Equal((HttpStatusCode.OK, "Healthy"), (running.StatusCode, await running.Content.ReadAsStringAsync()));

        await app.Services.GetRequiredService<ActorSystem>().Terminate().WaitAsync(Bound);
        var terminated = await client.GetAsync("/health").WaitAsync(Bound);
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "Unhealthy"), (terminated.StatusCode, await terminated.Content.ReadAsStringAsync()));
    }

    [Fact]
    public void A_blank_check_name_is_refused_naming_the_parameter()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<ArgumentException>(() => services.AddHealthChecks().AddActorQueue(name: " "));
        Assert.Equal("name", error.ParamName);
    }
}
