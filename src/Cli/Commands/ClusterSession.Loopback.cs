using System.Net;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// The loopback rules of <see cref="ClusterNodeOptions.Validate"/>, checked by the CLI first and said with the options
/// the user typed (<c>--listen</c>, <c>--seed</c>, <c>--insecure-loopback</c>, <c>--allow-remote</c>): the library's
/// own messages name its properties (<c>ListenHost</c>, <c>SeedNodes</c>), which is right for its callers and not for a
/// shell user. The rules are the library's (<see cref="ClusterNodeOptions.IsLoopback"/>: <c>localhost</c> or a loopback
/// IP address), so the library's check of the same options, when the node starts, never refuses what these passed.
/// </summary>
internal sealed partial class ClusterSession
{
    /// <summary>
    /// Whether <paramref name="host"/>'s loopback rule can be decided before it resolves: an IP address (IPv6 in
    /// brackets) or <c>localhost</c>. Any other name is checked once it has resolved (<see cref="ListenAddressAsync"/>,
    /// <see cref="WorkerProblemAsync"/>), so that a name that does not resolve is said not to, not to be "not a loopback
    /// address" (which only <c>--allow-remote</c> used to reveal).
    /// </summary>
    internal static bool DecidedUnresolved(string host) =>
        ClusterNodeOptions.IsLoopback(host) || IPAddress.TryParse(host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host, out _);

    /// <summary>Why <paramref name="node"/> may not listen on its <see cref="ClusterNodeOptions.ListenHost"/>; <c>null</c> if it may.</summary>
    internal static string? ListenRule(ClusterNodeOptions node)
    {
        var host = node.ListenHost;
        if (ClusterNodeOptions.IsLoopback(host))
        {
            return null;
        }

        var listen = $"--listen {host}:{node.ListenPort}";
        var name = !DecidedUnresolved(host);
        return node.InsecureLoopback
            ? $"{listen}: {NotLoopback(host)}, and {Security.ClusterCertificateOptions.InsecureOption} (no authentication) runs on loopback only"
            : node.AllowNonLoopback ? null
            : $"{listen}: {NotLoopback(host)}; listening on the network is an explicit choice: add --allow-remote{(name ? $" (or give --listen 127.0.0.1:{node.ListenPort})" : "")}";
    }

    /// <summary>
    /// Why <paramref name="host"/> fails the loopback rule: an IP address is not a loopback one; a host name other than
    /// <c>localhost</c> fails whatever it resolves to (the library's rule is by name), which "is not a loopback address"
    /// denied of a name that resolves to loopback, such as Debian's own host name (127.0.1.1).
    /// </summary>
    private static string NotLoopback(string host) => DecidedUnresolved(host)
        ? $"'{host}' is not a loopback address"
        : $"'{host}' is a host name, and the loopback rule takes only localhost or a loopback IP address, whatever a name resolves to";

    /// <summary>Why <paramref name="node"/> may not join <paramref name="seed"/> (as typed, a checked HOST:PORT); <c>null</c> if it may.</summary>
    internal static string? SeedRule(ClusterNodeOptions node, string seed)
    {
        var (host, port) = HostPort(seed, "--seed");
        return node.InsecureLoopback && !ClusterNodeOptions.IsLoopback(host)
            ? $"--seed {seed}: {NotLoopback(host)}, and a node with {Security.ClusterCertificateOptions.InsecureOption} (no authentication) joins loopback seeds only"
              + (DecidedUnresolved(host) ? "" : $" (give --seed 127.0.0.1:{port})")
            : null;
    }

    /// <summary>
    /// Why an IP address given for <paramref name="node"/> is no address a cluster can use, whatever the loopback rules
    /// say; <c>null</c> if none is such. Akka addresses a node by the host it listens as, and drops what arrives for any
    /// other name of it, so:
    /// <list type="bullet">
    /// <item>an IPv4-mapped IPv6 <c>--listen</c> (<c>[::ffff:127.0.0.1]:P</c>) cannot be bound (an IPv6 socket takes IPv6
    /// only: "cannot listen there: Invalid argument"); it is refused naming the IPv4 address to give, not listened on
    /// as that address, which would make the node's address one the user never gave (a node with the same
    /// <c>--seed [::ffff:127.0.0.1]:P</c> would then be dropped: it addresses another name);</item>
    /// <item>a coordinator's unspecified <c>--listen</c> (<c>0.0.0.0:P</c>, <c>[::]:P</c>) made its address
    /// <c>0.0.0.0:P</c>: joins sent to this machine's name or IP address were dropped ("non-local recipient"), so no
    /// node elsewhere could join, and its hint said <c>node --seed 0.0.0.0:P</c>, which on another machine connects to
    /// that machine's loopback;</item>
    /// <item>a worker's unspecified <c>--listen</c> made its address <c>0.0.0.0:P</c> too, the address its coordinator
    /// connects to: a coordinator on this machine reached it (as it reaches a loopback or an IP address of this machine,
    /// which the node can listen on instead), one on another machine connected to itself, so the node joined and was
    /// then unreachable; a bind on every address with another address advertised is Akka's <c>public-hostname</c>,
    /// which the CLI does not offer;</item>
    /// <item>a worker's unspecified <c>--seed</c> names no machine (it connected to loopback), and, no coordinator
    /// listening there any more, none a node could join; an IPv4-mapped one is where no coordinator listens.</item>
    /// </list>
    /// </summary>
    private static string? AddressRule(ClusterNodeOptions node, bool worker)
    {
        if (Literal(node.ListenHost) is { } listen && node.ListenPort != 0)
        {
            var given = $"--listen {node.ListenHost}:{node.ListenPort}";
            if (Unspecified(listen))
            {
                return worker
                    ? $"{given}: an unspecified address (every interface) cannot be a node's: the coordinator reaches a node at the address it listens as, and '{listen}' names no machine "
                      + $"(a coordinator on another machine would connect to itself): give --listen HOST:{node.ListenPort} with HOST an IP address or name of this machine that the coordinator reaches"
                    : $"{given}: an unspecified address (every interface) cannot be the coordinator's: nodes join it at the address it listens as, and '{listen}' names no machine "
                      + $"(a join sent to another name of this machine is dropped): give --listen HOST:{node.ListenPort} with HOST an IP address or name of this machine that the nodes reach";
            }

            if (listen.IsIPv4MappedToIPv6)
            {
                return $"{given}: '{listen}' is an IPv4 address written as IPv6, which a node cannot listen on (its IPv6 socket takes IPv6 only): give --listen {listen.MapToIPv4()}:{node.ListenPort}";
            }
        }

        foreach (var seed in worker ? node.SeedNodes : [])
        {
            var (host, port) = HostPort(seed, "--seed");
            if (Literal(host) is not { } address)
            {
                continue;
            }

            if (Unspecified(address))
            {
                return $"--seed {seed}: an unspecified address is not a seed (it names no machine, and no coordinator listens as it): give the coordinator's --listen address";
            }

            if (address.IsIPv4MappedToIPv6)
            {
                return $"--seed {seed}: '{address}' is an IPv4 address written as IPv6, where no coordinator listens: give --seed {address.MapToIPv4()}:{port}";
            }
        }

        return null;

        static IPAddress? Literal(string host) =>
            IPAddress.TryParse(host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host, out var address) ? address : null;

        static bool Unspecified(IPAddress address) =>
            address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.IsIPv4MappedToIPv6 && address.MapToIPv4().Equals(IPAddress.Any);
    }

    /// <summary>
    /// The loopback rules of <paramref name="node"/>'s addresses that can be decided before they resolve
    /// (<see cref="DecidedUnresolved"/>); its seeds are a worker's <c>--seed</c> (a coordinator's is its own <c>--listen</c>,
    /// checked as that), after the addresses no cluster can use (<see cref="AddressRule"/>). <c>null</c> if none is broken.
    /// </summary>
    internal static string? UnresolvedRules(ClusterNodeOptions node, bool worker)
    {
        if (AddressRule(node, worker) is { } address)
        {
            return address;
        }

        if (DecidedUnresolved(node.ListenHost) && ListenRule(node) is { } listen)
        {
            return listen;
        }

        return worker ? node.SeedNodes.Where(seed => DecidedUnresolved(HostPort(seed, "--seed").Host)).Select(seed => SeedRule(node, seed)).FirstOrDefault(rule => rule is not null) : null;
    }
}
