using Akka.Configuration;

namespace ActorQueue.Cluster;

/// <summary>The typed <c>actorqueue.cluster</c> configuration (see <c>hocon/cluster.conf</c>).</summary>
/// <param name="SingletonRole">The role a node needs to host the singleton; <c>null</c> for any node.</param>
/// <param name="WorkerRole">The role a node needs to register queue workers.</param>
/// <param name="RecoverInterval">How often a new gatekeeper asks silent nodes for their leases again.</param>
/// <param name="MaxDeliveries">How often an item may go to a worker that is lost before it is reported failed.</param>
public sealed record ActorQueueClusterSettings(string? SingletonRole, string WorkerRole, TimeSpan RecoverInterval, int MaxDeliveries)
{
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
            section.GetTimeSpan("recover-interval", TimeSpan.FromSeconds(1)),
            maxDeliveries);
    }
}
