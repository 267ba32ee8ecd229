using ActorQueue.Actors;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using Serilog;
using LogEventLevel = Serilog.Events.LogEventLevel;

namespace ActorQueue.Runtime;

/// <summary>
/// Akka.NET logger that writes the logging bus to Serilog's static <see cref="Log.Logger"/>, keeping message
/// templates and their arguments as structured properties.
/// </summary>
/// <remarks>
/// Enable it with <c>akka.loggers = ["ActorQueue.Runtime.SerilogLoggerActor, ActorQueue.Actors"]</c> (the default in
/// ActorQueue's embedded configuration). The logger is looked up for every event, so a process that configures
/// <see cref="Log.Logger"/> after the actor system started still gets the events. Each event carries the
/// properties <c>SourceContext</c> (the log source), <c>ActorLogClass</c> and <c>ThreadId</c>. The application's objects
/// in an event may throw from <c>ToString</c>: a message object that does is written as a placeholder naming what threw,
/// and a cause that does is handed to Serilog as a stand-in that prints (<see cref="UserText"/>), so its line is still
/// written (Serilog drops a line whose rendering throws in a sink) and the logger goes on (a throw out of it restarted it).
/// </remarks>
public sealed class SerilogLoggerActor : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    /// <summary>Creates the logger actor; Akka calls this when it reads <c>akka.loggers</c>.</summary>
    public SerilogLoggerActor()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(Write);
    }

    /// <summary>The Serilog level for an Akka level.</summary>
    /// <param name="level">The Akka log level.</param>
    /// <returns>The matching Serilog level.</returns>
    public static LogEventLevel ToSerilogLevel(LogLevel level) => level switch
    {
        LogLevel.DebugLevel => LogEventLevel.Debug,
        LogLevel.InfoLevel => LogEventLevel.Information,
        LogLevel.WarningLevel => LogEventLevel.Warning,
        _ => LogEventLevel.Error,
    };

    private static void Write(LogEvent logEvent)
    {
        var level = ToSerilogLevel(logEvent.LogLevel());
        var logger = Log.Logger;
        if (!logger.IsEnabled(level))
        {
            return;
        }

        logger = logger
            .ForContext(Serilog.Core.Constants.SourceContextPropertyName, logEvent.LogSource)
            .ForContext("ActorLogClass", logEvent.LogClass?.FullName)
            .ForContext("ThreadId", logEvent.Thread.ManagedThreadId);

        var cause = logEvent.Cause is { } error ? UserText.Printable(error) : null;
        if (logEvent.Message is LogMessage message)
        {
            // Serilog captures the arguments itself, and writes a placeholder for one whose ToString throws.
            logger.Write(level, cause, message.Format, message.Parameters().ToArray());
        }
        else
        {
            // A pre-formatted string is not a template: braces in it must not become properties.
            logger.Write(level, cause, "{Message:l}", logEvent.Message is null ? null : UserText.Of(logEvent.Message, "message"));
        }
    }
}
