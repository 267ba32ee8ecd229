using ActorQueue.Runtime;
using MelLogger = Microsoft.Extensions.Logging.ILogger;
using SerilogLogger = Serilog.ILogger;

namespace ActorQueue.Actors;

/// <summary>The queue facades' loggers as log sinks, made once the queue's name is known.</summary>
internal static class QueueLogs
{
    /// <summary>The Microsoft.Extensions.Logging category of queues that log through the system's logger factory.</summary>
    public const string Category = "ActorQueue.Queues";

    /// <summary>A Serilog logger's sink (with the <c>Queue</c> property), or <c>null</c> for the system's default.</summary>
    public static Func<string, LogSink>? Serilog(SerilogLogger? logger) => logger is null ? null : name => LogSink.ForSerilog(logger, "Queue", name);

    /// <summary>A Microsoft.Extensions.Logging logger's sink.</summary>
    public static Func<string, LogSink> Microsoft(MelLogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        return _ => LogSink.ForMicrosoft(logger);
    }
}

/// <summary>Argument checks shared by the queue facades.</summary>
internal static class QueueArguments
{
    /// <summary>A put or stop timeout, by <see cref="Timeouts"/>' rule: over-long means infinite, negative is refused.</summary>
    public static TimeSpan PutTimeout(TimeSpan value, string parameterName) => Timeouts.Normalize(value, parameterName);
}
