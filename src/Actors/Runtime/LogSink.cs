using ActorQueue.Actors;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Runtime;

/// <summary>
/// Where a facade's log events go: a Serilog logger, a Microsoft.Extensions.Logging logger, or the actor system's
/// default (the logger factory attached to it with <see cref="ActorQueueRuntime.UseLoggerFactory"/>, else Serilog's
/// static <c>Log.Logger</c>). Events are message templates with positional arguments, which both libraries read the
/// same way, so one set of log calls serves both.
/// </summary>
internal abstract class LogSink
{
    /// <summary>Writes one event; <paramref name="args"/> fill the template's holes in order.</summary>
    public abstract void Write(LogLevel level, Exception? exception, string template, params object?[] args);

    /// <summary>A sink for an explicit Serilog logger; the static <c>Log.Logger</c> is read per event when it is <c>null</c>.</summary>
    public static LogSink ForSerilog(Serilog.ILogger? logger, string contextName, string contextValue) => new SerilogSink(logger, contextName, contextValue);

    /// <summary>A sink for an explicit Microsoft.Extensions.Logging logger.</summary>
    public static LogSink ForMicrosoft(ILogger logger) => new MicrosoftSink(logger);

    /// <summary>
    /// The system's default, read per event: a logger factory attached to <paramref name="runtime"/> (under hosting),
    /// else Serilog's static logger, so a logger configured after the facade was created still gets its events.
    /// </summary>
    public static LogSink SystemDefault(ActorQueueExtension runtime, string category, string contextName, string contextValue) =>
        new DefaultSink(runtime, category, new SerilogSink(null, contextName, contextValue));

    /// <summary>Serilog's level for a Microsoft.Extensions.Logging level.</summary>
    public static Serilog.Events.LogEventLevel ToSerilog(LogLevel level) => level switch
    {
        LogLevel.Trace => Serilog.Events.LogEventLevel.Verbose,
        LogLevel.Debug => Serilog.Events.LogEventLevel.Debug,
        LogLevel.Information => Serilog.Events.LogEventLevel.Information,
        LogLevel.Warning => Serilog.Events.LogEventLevel.Warning,
        LogLevel.Error => Serilog.Events.LogEventLevel.Error,
        _ => Serilog.Events.LogEventLevel.Fatal,
    };

    private sealed class SerilogSink(Serilog.ILogger? logger, string contextName, string contextValue) : LogSink
    {
        public override void Write(LogLevel level, Exception? exception, string template, params object?[] args)
        {
            var serilogLevel = ToSerilog(level);
            var target = logger ?? global::Serilog.Log.Logger;
            if (target.IsEnabled(serilogLevel))
            {
                target.ForContext(contextName, contextValue).Write(serilogLevel, exception, template, args);
            }
        }
    }

    private sealed class MicrosoftSink(ILogger logger) : LogSink
    {
        public override void Write(LogLevel level, Exception? exception, string template, params object?[] args)
        {
            if (!logger.IsEnabled(level))
            {
                return;
            }

            // Microsoft.Extensions.Logging lets a provider's exception out (Serilog keeps a sink's to itself), and a
            // provider that formats as it is called reads the exception's ToString: the application's code, which may
            // throw. A log line must not fail the library's work around it (a worker's report, an actor's turn), so
            // the line goes again with a stand-in that prints, and is lost only if that fails too.
            try
            {
                Log(exception);
            }
            catch (Exception) when (exception is not null)
            {
                try
                {
                    Log(UserText.Printable(exception));
                }
                catch (Exception)
                {
                    // Nothing to report it to: the log is what failed.
                }
            }
            catch (Exception)
            {
                // As above.
            }

#pragma warning disable CA2254 // The templates are ActorQueue's own constants, passed through one sink for two libraries.
            void Log(Exception? error) => logger.Log(level, error, template, args);
#pragma warning restore CA2254
        }
    }

    private sealed class DefaultSink(ActorQueueExtension runtime, string category, SerilogSink fallback) : LogSink
    {
        /// <summary>The logger made from the factory attached last, with that factory; replaced as one reference, so a reader never mixes two.</summary>
        private Cached? _cached;

        public override void Write(LogLevel level, Exception? exception, string template, params object?[] args)
        {
            var factory = runtime.LoggerFactory;
            if (factory is null)
            {
                fallback.Write(level, exception, template, args);
                return;
            }

            var cached = Volatile.Read(ref _cached);
            if (cached is null || !ReferenceEquals(cached.Factory, factory))
            {
                cached = new Cached(factory, LoggerOf(factory));
                Volatile.Write(ref _cached, cached);
            }

            if (cached.Sink is { } sink)
            {
                sink.Write(level, exception, template, args);
                return;
            }

            fallback.Write(level, exception, template, args);
        }

        /// <summary>
        /// The sink of <paramref name="factory"/>'s logger for the category; <c>null</c> when the factory throws as it makes
        /// one (a disposed factory does: a host disposed while the system lives on), so the events go to the fallback
        /// until another factory is attached. Before, the exception came out of the log call into the work around it, a
        /// router's turn, and a queue's <c>StartAsync</c> never completed (<c>Review/ThrowingLoggerFactoryRound40Tests</c>).
        /// </summary>
        private MicrosoftSink? LoggerOf(ILoggerFactory factory)
        {
            try
            {
                return new MicrosoftSink(factory.CreateLogger(category));
            }
            catch (Exception)
            {
                return null;
            }
        }

        /// <summary>The logger made from <paramref name="Factory"/>, or <c>null</c> when it could not make one.</summary>
        private sealed record Cached(ILoggerFactory Factory, MicrosoftSink? Sink);
    }
}
