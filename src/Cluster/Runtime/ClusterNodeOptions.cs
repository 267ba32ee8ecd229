using System.Net;

namespace ActorQueue.Cluster;

/// <summary>How a node joins an ActorQueue cluster: where it listens, which seed nodes it contacts, and its roles.</summary>
public sealed record ClusterNodeOptions
{
    /// <summary>The address the node's transport binds to; loopback (<c>127.0.0.1</c>) by default.</summary>
    public string ListenHost { get; init; } = "127.0.0.1";

    /// <summary>The port the node listens on; 0 for any free port.</summary>
    public int ListenPort { get; init; }

    /// <summary>
    /// Seed nodes as <c>HOST:PORT</c>; the node joins the first that answers. Empty: the node forms or joins a
    /// cluster only when told to (<see cref="ActorQueueCluster.JoinAsync"/>). List the node itself to let it
    /// start a new cluster.
    /// </summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    /// <summary>The node's cluster roles; <c>null</c> keeps the configured roles (<c>["worker"]</c>).</summary>
    public IReadOnlyList<string>? Roles { get; init; }

    /// <summary>
    /// Allows <see cref="ListenHost"/> to be an address other than loopback. Traffic between nodes is then open to
    /// the network: turn on the transport's TLS (see <c>hocon/cluster.conf</c>) and keep it on a trusted network.
    /// </summary>
    public bool AllowNonLoopback { get; init; }

    /// <summary>Checks the options; throws naming the wrong one.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ListenHost))
        {
            throw new ArgumentException($"ListenHost must name an address, got '{ListenHost}'", nameof(ListenHost));
        }

        if (ListenPort is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(ListenPort), ListenPort, $"ListenPort must be 0..65535, got {ListenPort}");
        }

        if (!AllowNonLoopback && !IsLoopback(ListenHost))
        {
            throw new ArgumentException(
                $"ListenHost '{ListenHost}' is not a loopback address; binding to the network is an explicit choice: set AllowNonLoopback (CLI: --allow-remote) and enable the transport's TLS",
                nameof(ListenHost));
        }

        foreach (var seed in SeedNodes)
        {
            _ = ParseHostPort(seed, nameof(SeedNodes));
        }
    }

    /// <summary>Parses <c>HOST:PORT</c>.</summary>
    /// <param name="value">The text.</param>
    /// <param name="parameterName">The parameter to name in the exception.</param>
    /// <returns>The host and the port.</returns>
    /// <exception cref="ArgumentException">The text is not <c>HOST:PORT</c> with a port in 1..65535.</exception>
    public static (string Host, int Port) ParseHostPort(string value, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(value, parameterName);
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"{parameterName} must be HOST:PORT with a port in 1..65535, got '{value}'", parameterName);
        }

        return (value[..colon], port);
    }

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
