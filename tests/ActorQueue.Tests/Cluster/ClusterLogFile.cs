using System.Globalization;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A diagnostic aid, off by default: with <c>ACTORQUEUE_CLUSTER_LOG=path</c> (and optionally
/// <c>ACTORQUEUE_CLUSTER_LOGLEVEL</c>, INFO by default) every test cluster node appends its Akka log to that file, one
/// line per event with the time, the node and the source, so a cluster test that failed in a loop can be explained.
/// </summary>
internal sealed class ClusterLogFile : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private static readonly string? Path = Environment.GetEnvironmentVariable("ACTORQUEUE_CLUSTER_LOG");

    private static readonly Lock Gate = new();

    public ClusterLogFile()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(Write);
    }

    /// <summary>The configuration that turns the file on, or an empty string when the variable is not set.</summary>
    public static string Config => Path is null
        ? string.Empty
        : $"""
           akka.loglevel = {Environment.GetEnvironmentVariable("ACTORQUEUE_CLUSTER_LOGLEVEL") ?? "INFO"}
           akka.loggers = ["{typeof(ClusterLogFile).FullName}, {typeof(ClusterLogFile).Assembly.GetName().Name}"]
           """;

    private static void Write(LogEvent logEvent)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{logEvent.Timestamp:HH:mm:ss.fff} {logEvent.LogLevel().ToString()[..4]} t{logEvent.Thread.ManagedThreadId} [{logEvent.LogSource}] {logEvent.Message}{(logEvent.Cause is null ? "" : " | " + logEvent.Cause.GetType().Name + ": " + logEvent.Cause.Message)}\n");
        lock (Gate)
        {
            File.AppendAllText(Path!, line);
        }
    }
}
