using System.Globalization;
using System.Reflection;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Cluster;

/// <summary>
/// Creates actor systems that are ActorQueue cluster nodes: <c>hocon/cluster.conf</c> (remoting on loopback,
/// the split-brain resolver, failure detection, roles) over <c>hocon/actorqueue.conf</c>, with the node's
/// <see cref="ClusterNodeOptions"/> on top.
/// </summary>
public static class ActorQueueClusterRuntime
{
    /// <summary>The actor system name every node of an ActorQueue cluster shares (Akka only joins equal names).</summary>
    public const string DefaultSystemName = "actorqueue";

    private const string ConfigResourceName = "ActorQueue.hocon.cluster.conf";

    private static readonly Lazy<Config> EmbeddedConfig = new(() => ActorQueueRuntime.LoadEmbeddedConfig(Assembly.GetExecutingAssembly(), ConfigResourceName));

    /// <summary>The cluster overlay (<c>hocon/cluster.conf</c>) as embedded in the assembly.</summary>
    public static Config ClusterConfig => EmbeddedConfig.Value;

    /// <summary>Creates and starts a cluster node.</summary>
    /// <param name="options">Where it listens, its seeds and roles; the defaults listen on a free loopback port.</param>
    /// <param name="overrides">Configuration that wins over the overlay and ActorQueue's defaults; <c>null</c> for none.</param>
    /// <param name="name">The actor system's name; every node of one cluster must use the same.</param>
    /// <returns>A started node; the caller owns it. It joins its seeds by itself, or waits for <see cref="ActorQueueCluster.JoinAsync"/>.</returns>
    /// <exception cref="ArgumentException">An option is invalid, or the host is not loopback and that was not allowed.</exception>
    public static ActorSystem Create(ClusterNodeOptions? options = null, Config? overrides = null, string name = DefaultSystemName)
    {
        options ??= new ClusterNodeOptions();
        options.Validate();
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var config = NodeConfig(options, name);
        if (overrides is not null)
        {
            config = overrides.WithFallback(config);
        }

        return ActorQueueRuntime.Create(name, config.WithFallback(ClusterConfig));
    }

    private static Config NodeConfig(ClusterNodeOptions options, string systemName)
    {
        var lines = new List<string>
        {
            $"akka.remote.dot-netty.tcp.hostname = {Quote(options.ListenHost)}",
            $"akka.remote.dot-netty.tcp.port = {options.ListenPort.ToString(CultureInfo.InvariantCulture)}",
        };
        if (options.SeedNodes.Count > 0)
        {
            var seeds = options.SeedNodes.Select(seed =>
            {
                var (host, port) = ClusterNodeOptions.ParseHostPort(seed, nameof(options.SeedNodes));
                return Quote($"akka.tcp://{systemName}@{host}:{port.ToString(CultureInfo.InvariantCulture)}");
            });
            lines.Add($"akka.cluster.seed-nodes = [{string.Join(", ", seeds)}]");
        }

        if (options.Roles is { } roles)
        {
            lines.Add($"akka.cluster.roles = [{string.Join(", ", roles.Select(Quote))}]");
        }

        return ConfigurationFactory.ParseString(string.Join('\n', lines));
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
