using Akka.Configuration;

namespace ActorQueue.Runtime;

/// <summary>The <c>actorqueue</c> section of the HOCON configuration, read once per actor system.</summary>
/// <param name="CoordinatorDispatcher">The dispatcher id for gatekeepers and coordinators.</param>
/// <param name="WorkerDispatcher">The dispatcher id for queue workers.</param>
/// <param name="DefaultLimiterName">The name a limiter without a name reports in logs and metrics.</param>
/// <param name="QueuePutTimeout">How long a put waits for space by default.</param>
/// <param name="QueueStopTimeout">How long a stop lets in-flight work finish by default.</param>
public sealed record ActorQueueSettings(
    string CoordinatorDispatcher,
    string WorkerDispatcher,
    string DefaultLimiterName,
    TimeSpan QueuePutTimeout,
    TimeSpan QueueStopTimeout)
{
    /// <summary>
    /// The most queued items a free queue worker takes at once (<c>actorqueue.queue.worker-batch</c>, default 32): a
    /// worker takes its share of the backlog among the workers, at least one and at most this many; 1 hands out
    /// items one by one.
    /// </summary>
    public int QueueWorkerBatch { get; init; } = 32;

    /// <summary>Reads the settings from a configuration that has ActorQueue's defaults as a fallback.</summary>
    /// <param name="config">The actor system's configuration.</param>
    /// <returns>The typed settings.</returns>
    public static ActorQueueSettings From(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var section = config.GetConfig("actorqueue");
        return new ActorQueueSettings(
            CoordinatorDispatcher: "actorqueue.coordinator-dispatcher",
            WorkerDispatcher: "actorqueue.worker-dispatcher",
            DefaultLimiterName: section.GetString("limiter.default-name", "unnamed"),
            QueuePutTimeout: section.GetTimeSpan("queue.put-timeout", TimeSpan.FromMilliseconds(100)),
            QueueStopTimeout: section.GetTimeSpan("queue.stop-timeout", TimeSpan.FromSeconds(5)))
        {
            QueueWorkerBatch = WorkerBatch(section.GetInt("queue.worker-batch", 32)),
        };
    }

    private static int WorkerBatch(int value) => value >= 1
        ? value
        : throw new ArgumentOutOfRangeException("actorqueue.queue.worker-batch", value, $"actorqueue.queue.worker-batch must be >= 1, got {value}");
}
