using System.Globalization;
using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote;
using Akka.Remote.Transport.DotNetty;

namespace ActorQueue.Cluster;

/// <summary>
/// Creates actor systems that are ActorQueue cluster nodes: <c>hocon/cluster.conf</c> (remoting on loopback,
/// the split-brain resolver, failure detection, roles, what peers may send) over <c>hocon/actorqueue.conf</c>, with
/// the node's <see cref="ClusterNodeOptions"/> on top, and mutual TLS with the node's certificate on the transport.
/// </summary>
public static class ActorQueueClusterRuntime
{
    /// <summary>The actor system name every node of an ActorQueue cluster shares (Akka only joins equal names).</summary>
    public const string DefaultSystemName = "actorqueue";

    private const string ConfigResourceName = "ActorQueue.hocon.cluster.conf";

    private const string TransportPath = "akka.remote.dot-netty.tcp";

    /// <summary>Akka.Remote's reference configuration, as embedded in its assembly: what a node's transport settings must stay.</summary>
    private static readonly Lazy<Config> AkkaRemoteDefaults = new(() => ConfigurationFactory.FromResource<RemoteSettings>("Akka.Remote.Configuration.Remote.conf"));

    private static readonly Lazy<Config> EmbeddedConfig = new(() => ActorQueueRuntime.LoadEmbeddedConfig(Assembly.GetExecutingAssembly(), ConfigResourceName));

    /// <summary>The cluster overlay (<c>hocon/cluster.conf</c>) as embedded in the assembly.</summary>
    public static Config ClusterConfig => EmbeddedConfig.Value;

    /// <summary>Creates and starts a cluster node.</summary>
    /// <param name="options">Where it listens, its seeds and roles, its certificate and whom it trusts.</param>
    /// <param name="overrides">
    /// Configuration that wins over the overlay and ActorQueue's defaults; <c>null</c> for none. It cannot turn the
    /// transport's TLS off, bind an address the options do not allow, enable another transport or change the
    /// transport's class or protocol.
    /// </param>
    /// <param name="name">The actor system's name; every node of one cluster must use the same.</param>
    /// <returns>A started node; the caller owns it. It joins its seeds by itself, or waits for <see cref="ActorQueueCluster.JoinAsync"/>.</returns>
    /// <exception cref="QueueStorageException">The <see cref="ClusterNodeOptions.QueueDurability"/> SQLite file cannot be opened, read or written.</exception>
    /// <exception cref="ArgumentException">
    /// An option is invalid: no certificate without <see cref="ClusterNodeOptions.InsecureLoopback"/>, or an address
    /// that is not loopback when that was not allowed; or <paramref name="overrides"/> enable another transport or change the
    /// transport's class or protocol.
    /// </exception>
    public static ActorSystem Create(ClusterNodeOptions options, Config? overrides = null, string name = DefaultSystemName)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (options.QueueDurability?.SqlitePath is { } journalFile)
        {
            // Here, not in the extension: Akka logs and skips an extension that fails to load, and a node must not start without its journal.
            DurableStorage.CheckSqlite(journalFile, "distributed queues");
        }

        var config = NodeConfig(options, name);
        if (overrides is not null)
        {
            config = overrides.WithFallback(config);
        }

        config = ConfigurationFactory.ParseString($"{TransportPath}.enable-ssl = {(options.InsecureLoopback ? "off" : "on")}")
            .WithFallback(config)
            .WithFallback(ClusterConfig)
            .WithFallback(ActorQueueRuntime.DefaultConfig);
        options.CheckListenHost(config.GetString($"{TransportPath}.hostname", ""), "akka.remote.dot-netty.tcp.hostname");
        CheckTransport(config);

        var setup = ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config));
        if (options.QueueDurability is { } durability)
        {
            setup = setup.And(new DistributedQueueSetup(durability));
        }

        return options.InsecureLoopback
            ? ActorSystem.Create(name, setup)
            : ActorSystem.Create(name, setup.And(new DotNettySslSetup(
                options.Certificate!,
                suppressValidation: false,
                requireMutualAuthentication: true,
                validateCertificateHostname: false, // nodes are addressed by IP; the CA, not the name, decides membership
                options.PeerValidator().Callback)));
    }

    /// <summary>
    /// Refuses overrides that would open a transport besides the one whose TLS and address are forced and checked: Akka
    /// starts every transport <c>akka.remote.enabled-transports</c> lists, each from its own section, so a second one (a
    /// plain TCP section, say) would listen without TLS on any address it names.
    /// </summary>
    /// <exception cref="ArgumentException">Another transport is enabled, or the DotNetty transport's class or protocol was changed; the error names the key and its value.</exception>
    private static void CheckTransport(Config config)
    {
        // Akka.Remote's own defaults: the one transport, DotNetty TCP, which this node's TLS and address checks cover.
        var akkaDefaults = AkkaRemoteDefaults.Value;
        foreach (var path in (string[])["akka.remote.enabled-transports", $"{TransportPath}.transport-class", $"{TransportPath}.transport-protocol"])
        {
            if (config.HasPath(path) && Text(config, path) != Text(akkaDefaults, path))
            {
                throw new ArgumentException(
                    $"{path} cannot be changed on an ActorQueue cluster node (only the DotNetty TCP transport has its TLS and address checked): "
                    + $"got {Text(config, path)}, Akka's default is {Text(akkaDefaults, path)}", "overrides");
            }
        }

        static string Text(Config config, string path) => config.GetValue(path) is { } value && value.IsArray()
            ? $"[{string.Join(", ", value.GetStringList().Select(item => $"\"{item}\""))}]"
            : $"'{config.GetString(path, "")}'";
    }

    private static Config NodeConfig(ClusterNodeOptions options, string systemName)
    {
        var lines = new List<string>
        {
            $"{TransportPath}.hostname = {Quote(options.ListenHost)}",
            $"{TransportPath}.port = {options.ListenPort.ToString(CultureInfo.InvariantCulture)}",
        };
        if (options.SeedNodes.Count > 0)
        {
            var scheme = options.InsecureLoopback ? "akka.tcp" : "akka.ssl.tcp";
            var seeds = options.SeedNodes.Select(seed =>
            {
                var (host, port) = ClusterNodeOptions.ParseHostPort(seed, nameof(options.SeedNodes));
                return Quote($"{scheme}://{systemName}@{host}:{port.ToString(CultureInfo.InvariantCulture)}");
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

/// <summary>Carries <see cref="ClusterNodeOptions.QueueDurability"/> into the node's actor system, where the cluster extension reads it at start.</summary>
internal sealed class DistributedQueueSetup(ActorQueue.Actors.QueueDurability durability) : Setup
{
    public ActorQueue.Actors.QueueDurability Durability { get; } = durability;
}
