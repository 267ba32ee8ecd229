using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Runtime;

public class RuntimeTests
{
    [Fact]
    public async Task A_facade_without_a_system_runs_on_the_embedded_default_system()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "default-system");

        using (await limiter.AcquireAsync("t"))
        {
            Assert.Equal(ActorQueueRuntime.DefaultSystemName, limiter.Gatekeeper.Path.Address.System);
        }

        Assert.True(ActorQueueRuntime.IsDefaultStarted);
        Assert.Same(ActorQueueRuntime.Default, ActorQueueRuntime.Default);
    }

    [Fact]
    public void The_default_system_logs_through_serilog_and_shuts_down_with_the_process()
    {
        var config = ActorQueueRuntime.Default.Settings.Config;

        Assert.Contains("ActorQueue.Runtime.SerilogLoggerActor, ActorQueue.Actors", config.GetStringList("akka.loggers"));
        Assert.True(config.GetBoolean("akka.coordinated-shutdown.run-by-clr-shutdown-hook"));
    }

    [Fact]
    public async Task A_callers_configuration_wins_over_the_embedded_defaults()
    {
        var overrides = ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 7s\nactorqueue.queue.put-timeout = 250ms");
        using var system = ActorQueueRuntime.Create("overridden", overrides);
        try
        {
            var settings = ActorQueueExtension.Get(system).Settings;

            Assert.Equal(TimeSpan.FromSeconds(7), settings.QueueStopTimeout);
            Assert.Equal(TimeSpan.FromMilliseconds(250), settings.QueuePutTimeout);
            Assert.Equal("unnamed", settings.DefaultLimiterName);
            using var queue = new ActorQueue.Actors.BoundedQueue<int>(system: system);
            Assert.Equal(TimeSpan.FromMilliseconds(250), queue.DefaultPutTimeout);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_plain_system_of_the_caller_gets_the_defaults_underneath_its_own_config()
    {
        using var system = ActorSystem.Create("plain", "akka.loglevel = WARNING");
        try
        {
            using var limiter = new ConcurrencyLimiter(2, system: system);
            using var lease = await limiter.AcquireAsync("t");

            Assert.Equal("plain", limiter.Gatekeeper.Path.Address.System);
            Assert.Equal(TimeSpan.FromMilliseconds(100), ActorQueueExtension.Get(system).Settings.QueuePutTimeout);
            Assert.Equal("WARNING", system.Settings.Config.GetString("akka.loglevel"));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public void Create_rejects_a_blank_name()
    {
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => ActorQueueRuntime.Create(" ")).ParamName);
    }
}
