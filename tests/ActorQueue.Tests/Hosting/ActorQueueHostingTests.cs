using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;
using Akka.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Hosting;

[Collection(HostingCollection.Name)]
public class ActorQueueHostingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static IHost BuildHost(CapturingLoggerProvider logs, Action<IServiceCollection> services, Dictionary<string, string?>? settings = null,
                                   TimeSpan? shutdownTimeout = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings ?? []);
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(30));
        services(builder.Services);
        return builder.Build();
    }

    private static Dictionary<string, string?> FetchQueueUnderLlmLimiter() => new()
    {
        ["ActorQueue:Limiters:llm:MaxRunning"] = "2",
        ["ActorQueue:Limiters:llm:MaxQueued"] = "50",
        ["ActorQueue:Queues:fetch:MaxSize"] = "10",
        ["ActorQueue:Queues:fetch:Limiter"] = "llm",
    };

    [Fact]
    public async Task A_host_runs_named_queues_from_configuration_and_logs_queue_and_akka_events_to_its_logger_factory()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s.AddActorQueue(new ConfigurationBuilder().AddInMemoryCollection(FetchQueueUnderLlmLimiter()).Build()
            .GetSection("ActorQueue")));
        await host.StartAsync().WaitAsync(Bound);

        var registry = host.Services.GetRequiredService<ActorQueueRegistry>();
        Assert.Equal(ActorQueueOptions.DefaultSystemName, registry.System.Name);
        var queue = registry.GetQueue<int>("fetch");
        Assert.Same(queue, registry.GetQueue<int>("fetch"));
        Assert.Equal(2, queue.ConcurrencyLimit);
        Assert.Same(registry.GetLimiter("llm"), queue.Limiter);

        var done = 0;
        await queue.StartAsync();
        await queue.ProcessAsync(async (_, ct) =>
        {
            await Task.Yield();
            Interlocked.Increment(ref done);
        });
        for (var i = 0; i < 5; i++)
        {
            Assert.True(await queue.PutAsync(i));
        }

        await queue.JoinAsync().WaitAsync(Bound);
        Assert.Equal(5, Volatile.Read(ref done));
        registry.System.Log.Info("hello from akka's log bus");

        await host.StopAsync().WaitAsync(Bound);

        Assert.Equal(QueueStatus.Stopped, queue.Status);
        Assert.True(logs.Logged("ActorQueue.Queues.fetch", "Queue fetch started"), "the queue logs to the host's logger factory");
        await Poll.UntilAsync(() => logs.Logged("", "hello from akka's log bus"), Bound, "Akka's log bus reaches the host's logger factory");
        Assert.True(registry.System.WhenTerminated.IsCompleted, "the host terminated its actor system");
    }

    [Fact]
    public async Task Host_shutdown_token_cancels_work_in_flight_so_the_host_stops_promptly_and_the_item_stays_queued()
    {
        var logs = new CapturingLoggerProvider();
        var settings = FetchQueueUnderLlmLimiter();

        // The host gives its services 1 s; the queue's own stop timeout (none: wait for ever) must not hold the host past it.
        using var host = BuildHost(logs, s => s
            .AddAkka("shutdown", builder => builder.WithActorQueue().AddHocon("actorqueue.queue.stop-timeout = 1000d", HoconAddMode.Prepend))
            .AddActorQueue(o =>
            {
                o.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 };
                o.Queues["fetch"] = new QueueOptions { MaxSize = 10, Limiter = "llm" };
            }), settings, shutdownTimeout: TimeSpan.FromSeconds(1));
        await host.StartAsync().WaitAsync(Bound);
        var queue = host.Services.GetRequiredService<ActorQueueRegistry>().GetQueue<string>("fetch");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(async (_, ct) =>
        {
            running.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                cancelled.TrySetResult();
                throw;
            }
        });
        Assert.True(await queue.PutAsync("long"));
        await running.Task.WaitAsync(Bound);

        await host.StopAsync().WaitAsync(Bound);

        // At its deadline the host's stop returns without waiting for workers (one may ignore its token): the
        // cancellation reaches this worker all the same, and the queue is disposed.
        await cancelled.Task.WaitAsync(Bound);
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopped, Bound, "the queue stopped");
        Assert.Equal((0, 1), (queue.Metrics.Processed, queue.Metrics.Enqueued)); // cancelled work is put back, not counted as processed
    }

    [Fact]
    public async Task Facades_created_without_a_system_run_on_the_hosts_system_while_it_runs()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s.AddActorQueue());
        await host.StartAsync().WaitAsync(Bound);
        var system = host.Services.GetRequiredService<ActorSystem>();

        await using (var limiter = new ConcurrencyLimiter(1))
        {
            Assert.Same(system, ActorQueueRuntime.Default);
            Assert.Equal(system.Name, limiter.Gatekeeper.Path.Address.System);
        }

        await host.StopAsync().WaitAsync(Bound);

        Assert.Null(ActorQueueRuntime.Ambient); // a stopped host's system is no longer anybody's default
    }

    [Fact]
    public async Task With_UseAsDefaultSystem_off_the_hosts_system_is_not_the_default()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s.AddActorQueue(o => o.UseAsDefaultSystem = false));
        await host.StartAsync().WaitAsync(Bound);

        Assert.Null(ActorQueueRuntime.Ambient);

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task AddActorQueue_after_AddAkka_joins_that_actor_system()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s
            .AddAkka("joined", builder => builder.WithActorQueue())
            .AddActorQueue(o => o.Limiters["db"] = new LimiterOptions { MaxRunning = 3 }));
        await host.StartAsync().WaitAsync(Bound);

        var registry = host.Services.GetRequiredService<ActorQueueRegistry>();
        Assert.Equal("joined", registry.System.Name);
        Assert.Equal(3, registry.GetLimiter("db").MaxRunning);

        // WithActorQueue with no loggers configured before it: Akka logs to the host's ILoggerFactory only (not also to
        // stdout through DefaultLogger, nor through ActorQueue's Serilog bridge), and no set-up warning is logged.
        Assert.Equal(["Akka.Hosting.Logging.LoggerFactoryLogger"], registry.System.Settings.Loggers.Select(logger => logger.Split(',')[0]));
        Assert.DoesNotContain(logs.Events, e => e.Level >= LogLevel.Warning && e.Message.Contains("WithActorQueue", StringComparison.Ordinal));

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Hosted_services_registered_after_AddActorQueue_stop_while_its_queues_still_run()
    {
        var logs = new CapturingLoggerProvider();
        var producer = new QueueStatusAtStop();
        using var host = BuildHost(logs, s => s
            .AddActorQueue(o => o.Queues["jobs"] = new QueueOptions())
            .AddSingleton<IHostedService>(producer));
        await host.StartAsync().WaitAsync(Bound);
        var queue = host.Services.GetRequiredService<ActorQueueRegistry>().GetQueue<int>("jobs");
        await queue.StartAsync().WaitAsync(Bound);
        producer.Queue = queue;

        await host.StopAsync().WaitAsync(Bound);

        Assert.Equal(QueueStatus.Processing, producer.StatusAtStop); // the host stops services one after another: a producer can still put
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    [Fact]
    public async Task A_bad_limiter_setting_fails_the_host_start_naming_its_configuration_key_and_value()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s.AddActorQueue(o => o.Limiters["llm"] = new LimiterOptions { MaxRunning = 0 }));

        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => host.StartAsync().WaitAsync(Bound));

        Assert.Equal("ActorQueue:Limiters:llm:MaxRunning", error.ParamName);
        Assert.Contains("must be >= 1, got 0", error.Message);
        Assert.Null(ActorQueueRuntime.Ambient); // a host that failed to start is nobody's default
        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Asking_for_an_unconfigured_queue_or_another_item_type_fails_naming_it()
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(logs, s => s.AddActorQueue(o => o.Queues["jobs"] = new QueueOptions()));
        await host.StartAsync().WaitAsync(Bound);
        var registry = host.Services.GetRequiredService<ActorQueueRegistry>();

        Assert.Contains("'nope'", Assert.Throws<KeyNotFoundException>(() => registry.GetQueue<int>("nope")).Message);
        registry.GetQueue<int>("jobs");
        Assert.Contains("System.Int32", Assert.Throws<InvalidOperationException>(() => registry.GetQueue<string>("jobs")).Message);

        await host.StopAsync().WaitAsync(Bound);
    }

    /// <summary>A hosted service (a producer) that records a queue's status when the host stops it.</summary>
    private sealed class QueueStatusAtStop : IHostedService
    {
        public WorkQueue<int>? Queue { get; set; }

        public QueueStatus? StatusAtStop { get; private set; }

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            StatusAtStop = Queue?.Status;
            return Task.CompletedTask;
        }
    }
}
