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
    /// The loopback rules of <paramref name="node"/>'s addresses that can be decided before they resolve
    /// (<see cref="DecidedUnresolved"/>); its seeds are a worker's <c>--seed</c> (a coordinator's is its own <c>--listen</c>,
    /// checked as that). <c>null</c> if none is broken.
    /// </summary>
    internal static string? UnresolvedRules(ClusterNodeOptions node, bool worker)
    {
        if (DecidedUnresolved(node.ListenHost) && ListenRule(node) is { } listen)
        {
            return listen;
        }

        return worker ? node.SeedNodes.Where(seed => DecidedUnresolved(HostPort(seed, "--seed").Host)).Select(seed => SeedRule(node, seed)).FirstOrDefault(rule => rule is not null) : null;
    }
}
