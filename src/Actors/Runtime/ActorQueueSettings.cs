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
            QueuePutTimeout: QueueTimeout(section, "queue.put-timeout", TimeSpan.FromMilliseconds(100)),
            QueueStopTimeout: QueueTimeout(section, "queue.stop-timeout", TimeSpan.FromSeconds(5)))
        {
            QueueWorkerBatch = WorkerBatch(section.GetInt("queue.worker-batch", 32)),
        };
    }

    /// <summary>A timeout setting by <see cref="Timeouts"/>' rule (over-long means infinite), naming the key when it does not parse.</summary>
    private static TimeSpan QueueTimeout(Config section, string key, TimeSpan fallback)
    {
        var name = $"actorqueue.{key}";
        TimeSpan value;
        try
        {
            value = section.GetTimeSpan(key, fallback);
        }
        catch (FormatException ex)
        {
            throw new ArgumentException($"{name} must be a duration >= 0 or infinite, got '{section.GetString(key)}'", name, ex);
        }

        return Timeouts.Normalize(value, name);
    }

    private static int WorkerBatch(int value) => value >= 1
        ? value
        : throw new ArgumentOutOfRangeException("actorqueue.queue.worker-batch", value, $"actorqueue.queue.worker-batch must be >= 1, got {value}");
}
