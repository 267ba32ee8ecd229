using Akka.Configuration;

namespace ActorQueue.Cluster;

/// <summary>
/// How a cluster limiter's node agents lease blocks of permits (<c>actorqueue.cluster.limiter-blocks</c> and
/// <c>limiter-block-linger</c> in <c>hocon/cluster.conf</c>), read once by each agent.
/// </summary>
/// <param name="Enabled">Whether plain one-permit requests ask the gatekeeper for a block.</param>
/// <param name="Linger">How long a block's unused permits stay on a node that grants none of them before they go back.</param>
internal sealed record LimiterBlockSettings(bool Enabled, TimeSpan Linger)
{
    /// <summary>No blocks: every acquire is a round trip to the gatekeeper (partitions and limiters with rates).</summary>
    public static LimiterBlockSettings Off { get; } = new(false, TimeSpan.FromSeconds(1));

    /// <summary>Reads the settings from a system's configuration.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The linger is not positive.</exception>
    public static LimiterBlockSettings From(Config config)
    {
        var section = config.GetConfig("actorqueue.cluster");
        var linger = section?.GetTimeSpan("limiter-block-linger", TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(1);
        if (linger <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(config), linger, $"actorqueue.cluster.limiter-block-linger must be > 0, got {linger}");
        }

        return new LimiterBlockSettings(section?.GetBoolean("limiter-blocks", true) ?? true, linger);
    }
}
