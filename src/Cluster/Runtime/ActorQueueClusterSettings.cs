using Akka.Configuration;

namespace ActorQueue.Cluster;

/// <summary>The typed <c>actorqueue.cluster</c> configuration (see <c>hocon/cluster.conf</c>).</summary>
/// <param name="SingletonRole">The role a node needs to host the singleton; <c>null</c> for any node.</param>
/// <param name="WorkerRole">The role a node needs to register queue workers.</param>
/// <param name="RecoverInterval">How often a new gatekeeper asks silent nodes for their leases again.</param>
/// <param name="MaxDeliveries">How often an item may go to a worker that is lost before it is reported failed.</param>
/// <param name="HelloInterval">How often a node's agent repeats its first contact until a singleton incarnation answers.</param>
public sealed record ActorQueueClusterSettings(string? SingletonRole, string WorkerRole, TimeSpan RecoverInterval, int MaxDeliveries, TimeSpan HelloInterval)
{
    private static TimeSpan Positive(TimeSpan value, string key) =>
        value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException("config", value, $"actorqueue.cluster.{key} must be > 0, got {value}");

    /// <summary>Reads the settings from a system's configuration.</summary>
    /// <param name="config">The system's configuration, with <c>hocon/cluster.conf</c> as a fallback.</param>
    /// <returns>The settings.</returns>
    public static ActorQueueClusterSettings From(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var section = config.GetConfig("actorqueue.cluster");
        var singletonRole = section.GetString("singleton-role", "");
        var maxDeliveries = section.GetInt("max-deliveries", 3);
        if (maxDeliveries < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(config), maxDeliveries, $"actorqueue.cluster.max-deliveries must be >= 1, got {maxDeliveries}");
        }

        return new ActorQueueClusterSettings(
            string.IsNullOrEmpty(singletonRole) ? null : singletonRole,
            section.GetString("worker-role", "worker"),
            Positive(section.GetTimeSpan("recover-interval", TimeSpan.FromSeconds(1)), "recover-interval"),
            maxDeliveries,
            Positive(section.GetTimeSpan("hello-interval", TimeSpan.FromSeconds(1)), "hello-interval"));
    }
}
