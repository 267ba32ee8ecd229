using ActorQueue.Runtime;
using Akka.Event;
using Serilog;
using Serilog.Events;
using LogLevel = Akka.Event.LogLevel;

namespace ActorQueue.Tests.Runtime;

/// <summary>The bridge replaces the process-wide Log.Logger for a moment, so its tests do not run beside each other.</summary>
[Collection(nameof(SerilogLoggerActorTests))]
public class SerilogLoggerActorTests
{
    [Fact]
    public async Task Akka_log_events_reach_serilog_with_their_template_arguments_and_level()
    {
        var sink = new CapturingSink();
        var previous = Log.Logger;
        Log.Logger = new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(sink).CreateLogger();
        var system = ActorQueueRuntime.Create("serilog-bridge");
        try
        {
            var marker = Guid.NewGuid().ToString("N");
            system.Log.Info("bridge {0} reached {1}", marker, 42);
            system.Log.Error(new InvalidOperationException("boom"), "bridge failure {0}", marker);

            await Poll.UntilAsync(() => sink.Events.Count(e => e.Properties.Values.Any(v => v.ToString().Contains(marker, StringComparison.Ordinal))) >= 2,
                TimeSpan.FromSeconds(30), "both events reached Serilog");

            var info = sink.Events.Single(e => e.MessageTemplate.Text == "bridge {0} reached {1}");
            Assert.Equal(LogEventLevel.Information, info.Level);
            Assert.Equal($"bridge \"{marker}\" reached 42", info.RenderMessage());
            Assert.True(info.Properties.ContainsKey("SourceContext"));

            var error = sink.Events.Single(e => e.MessageTemplate.Text == "bridge failure {0}");
            Assert.Equal(LogEventLevel.Error, error.Level);
            Assert.Equal("boom", error.Exception?.Message);
        }
        finally
        {
            await system.Terminate();
            Log.Logger = previous;
        }
    }

    [Theory]
    [InlineData(LogLevel.DebugLevel, LogEventLevel.Debug)]
    [InlineData(LogLevel.InfoLevel, LogEventLevel.Information)]
    [InlineData(LogLevel.WarningLevel, LogEventLevel.Warning)]
    [InlineData(LogLevel.ErrorLevel, LogEventLevel.Error)]
    public void Akka_levels_map_to_serilog_levels(LogLevel akka, LogEventLevel serilog)
    {
        Assert.Equal(serilog, SerilogLoggerActor.ToSerilogLevel(akka));
    }
}
