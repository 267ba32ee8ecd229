using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>The cluster addresses of <c>run --cluster</c> and <c>node</c>, checked before the node starts.</summary>
internal sealed partial class ClusterSession
{
    /// <summary>
    /// <paramref name="value"/> (the value of <paramref name="option"/>) as <c>HOST:PORT</c>, with a host Akka can put in
    /// an address: a name or an IP address, IPv6 in brackets. A host such as <c>127.0.0.1:1</c> (from
    /// <c>127.0.0.1:1:2</c>, or two seeds joined by a comma) or one with a non-ASCII space passed the port's check and
    /// then crashed the node while it started (an unhandled UriFormatException, or a failed bind).
    /// </summary>
    /// <exception cref="ArgumentException">It is not; the message names the option and the value.</exception>
    public static (string Host, int Port) HostPort(string value, string option)
    {
        var (host, port) = ClusterNodeOptions.ParseHostPort(value, option);
        var bracketed = host.Length > 2 && host[0] == '[' && host[^1] == ']';
        var valid = bracketed
            ? IPAddress.TryParse(host[1..^1], out var address) && address.AddressFamily == AddressFamily.InterNetworkV6
            : Uri.CheckHostName(host) is UriHostNameType.Dns or UriHostNameType.IPv4 && host.All(char.IsAscii) // an IDN as xn--
              && host.Length <= MaxHostName; // longer, the resolver refuses it with an exception (a crash, exit 134)
        return valid
            ? (host, port)
            : throw new ArgumentException($"{option} must be HOST:PORT with a host name or IP address (IPv6 in brackets, like [::1]:4053), got '{value}'", option);
    }

    /// <summary>The longest host name there is (DNS's limit, which <see cref="Dns"/> enforces by throwing).</summary>
    private const int MaxHostName = 255;

    /// <summary>The coordinator's node options: it listens on <paramref name="listen"/> and is its own seed.</summary>
    public static ClusterNodeOptions Coordinator(string listen, bool allowRemote)
    {
        var (host, port) = HostPort(listen, "--listen");
        return new ClusterNodeOptions { ListenHost = host, ListenPort = port, SeedNodes = [listen], AllowNonLoopback = allowRemote };
    }

    /// <summary>A worker node's options: it listens on <paramref name="listen"/> (a free loopback port when empty) and joins <paramref name="seed"/>.</summary>
    public static ClusterNodeOptions Worker(string seed, string listen, bool allowRemote)
    {
        var (host, port) = listen == "" ? ("127.0.0.1", 0) : HostPort(listen, "--listen");
        var (seedHost, seedPort) = HostPort(seed, "--seed"); // checked here, or its error names the library's SeedNodes
        if (seedPort == port && string.Equals(seedHost, host, StringComparison.OrdinalIgnoreCase))
        {
            // A node whose seed is itself forms a cluster of its own, says it joined, and waits for a coordinator for ever.
            // Here the two as written; WorkerProblemAsync compares them resolved (localhost:P and 127.0.0.1:P).
            throw new ArgumentException($"--seed {seed} is this node's own --listen address (it would form a cluster of its own and wait for ever): give the coordinator's --listen address", "--seed");
        }

        return new ClusterNodeOptions { ListenHost = host, ListenPort = port, SeedNodes = [seed], AllowNonLoopback = allowRemote };
    }

    /// <summary>How long <see cref="ListenProblemAsync"/> and <see cref="SeedProblemAsync"/> wait for a host name to resolve.</summary>
    public static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Why <paramref name="node"/>'s listen address cannot be bound: its host name does not resolve (within
    /// <see cref="ResolveTimeout"/>), or the address Akka would bind cannot be bound here (another process holds the
    /// port, or the address is not this machine's); <c>null</c> if it can. Checked before the actor system starts, because Akka
    /// reports a failed bind (an unresolvable name included) as a logged stack trace and a crash.
    /// </summary>
    public static async Task<string?> ListenProblemAsync(ClusterNodeOptions node) => (await ListenAddressAsync(node).ConfigureAwait(false)).Problem;

    /// <summary>
    /// Why a worker node cannot join <paramref name="seed"/> (a checked HOST:PORT): its host name does not resolve (within
    /// <see cref="ResolveTimeout"/>), or resolves to no IPv4 address (Akka.Remote connects to a name's last IPv4 address,
    /// as it binds one); <c>null</c> if it resolves. Akka retried joining a seed that does not resolve for ever, logging a
    /// warning every few seconds; whether the coordinator is up yet is not checked (a node may start first, and waits).
    /// </summary>
    public static async Task<string?> SeedProblemAsync(string seed) => (await SeedAddressAsync(seed).ConfigureAwait(false)).Problem;

    /// <summary>
    /// Why worker <paramref name="node"/> cannot join <paramref name="seed"/>: its <see cref="ListenProblemAsync"/>, its
    /// <see cref="SeedProblemAsync"/>, or the seed is the node's own listen address once both are resolved
    /// (<see cref="IsOwnAddress"/>); <c>null</c> if none. <see cref="Worker"/> compared the two as text only, so
    /// <c>--seed localhost:P --listen 127.0.0.1:P</c> (or the host's name, or a <c>--listen 0.0.0.0:P</c>) started a node
    /// that tried to join itself for ever, logging that it dropped its own join messages every few seconds.
    /// </summary>
    public static async Task<string?> WorkerProblemAsync(ClusterNodeOptions node, string seed)
    {
        var (listening, listenProblem) = await ListenAddressAsync(node).ConfigureAwait(false);
        if (listenProblem is not null)
        {
            return listenProblem;
        }

        var (joining, seedProblem) = await SeedAddressAsync(seed).ConfigureAwait(false);
        if ((seedProblem ?? SeedRule(node, seed)) is { } refused)
        {
            return refused;
        }

        if (joining is null)
        {
            return null; // only with a seed problem, returned above
        }

        if (UnreachableProblem(node, seed, listening, joining) is { } unreachable)
        {
            return unreachable;
        }

        var (_, seedPort) = HostPort(seed, "--seed");
        if (listening is null || !IsOwnAddress(new IPEndPoint(joining, seedPort), new IPEndPoint(listening, node.ListenPort), IsThisMachines))
        {
            return null;
        }

        return $"--seed {seed} is this node's own --listen address {node.ListenHost}:{node.ListenPort} (here it connects to {new IPEndPoint(joining, seedPort)}, where this node listens, "
             + "and would try to join itself for ever): give the coordinator's --listen address";
    }

    /// <summary>
    /// Why a worker node that listens on loopback (<paramref name="listening"/>, the address it binds; <c>null</c>: no
    /// <c>--listen</c>, a free loopback port) cannot be reached from its seed at <paramref name="joining"/> (where it
    /// connects): the seed is another machine's, and a coordinator there connects back to the node's loopback address,
    /// its own. Such a node joined no cluster and waited for ever. A seed on one of this machine's addresses is not
    /// refused: a coordinator on this machine reaches the node's loopback port.
    /// </summary>
    private static string? UnreachableProblem(ClusterNodeOptions node, string seed, IPAddress? listening, IPAddress joining)
    {
        var seedHost = joining.IsIPv4MappedToIPv6 ? joining.MapToIPv4() : joining;
        var local = IPAddress.IsLoopback(seedHost) || seedHost.Equals(IPAddress.Any) || seedHost.Equals(IPAddress.IPv6Any) || IsThisMachines(seedHost);
        if (local || listening is not null && !IPAddress.IsLoopback(listening.IsIPv4MappedToIPv6 ? listening.MapToIPv4() : listening))
        {
            return null;
        }

        var where = listening is null ? "without --listen this node listens on loopback" : $"--listen {node.ListenHost}:{node.ListenPort} is loopback";
        return $"--seed {seed} is another machine's address ({seedHost}), but {where}, where a coordinator there cannot reach it: "
             + "give --listen HOST:PORT (an address of this machine that the coordinator reaches) with --allow-remote";
    }

    /// <summary>
    /// Whether a node listening on <paramref name="listen"/> that joins <paramref name="seed"/> (both resolved, as Akka
    /// binds and connects) joins itself: the same port and the same address (an IPv4-mapped IPv6 address as its IPv4
    /// one), a listener on every address (<c>0.0.0.0</c>, <c>[::]</c>) and a seed on loopback or on an address of this
    /// machine (<paramref name="isThisMachines"/>) of its family, or a seed of <c>0.0.0.0</c> (<c>[::]</c>), which
    /// connects to loopback.
    /// </summary>
    internal static bool IsOwnAddress(IPEndPoint seed, IPEndPoint listen, Func<IPAddress, bool> isThisMachines)
    {
        if (seed.Port != listen.Port)
        {
            return false;
        }

        var to = Plain(seed.Address);
        to = to.Equals(IPAddress.Any) ? IPAddress.Loopback : to.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : to;
        var at = Plain(listen.Address);
        if (at.Equals(IPAddress.Any) || at.Equals(IPAddress.IPv6Any))
        {
            return to.AddressFamily == at.AddressFamily && (IPAddress.IsLoopback(to) || isThisMachines(to));
        }

        return to.Equals(at);

        static IPAddress Plain(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    /// <summary>Whether <paramref name="address"/> is one of this machine's network interfaces' addresses (<c>false</c> when they cannot be listed).</summary>
    private static bool IsThisMachines(IPAddress address)
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces().SelectMany(i => i.GetIPProperties().UnicastAddresses).Any(u => u.Address.Equals(address));
        }
        catch (NetworkInformationException)
        {
            return false;
        }
    }

    /// <summary>The address <paramref name="node"/> listens on (as Akka binds it; <c>null</c> for a free loopback port), or why it cannot (<see cref="ListenProblemAsync"/>).</summary>
    private static async Task<(IPAddress? Address, string? Problem)> ListenAddressAsync(ClusterNodeOptions node)
    {
        if (node.ListenPort == 0)
        {
            return (null, null);
        }

        var host = node.ListenHost;
        var listen = $"--listen {host}:{node.ListenPort}";
        var (addresses, isAddress, problem) = await ResolveAsync(host, listen, "give an IP address or a name of this machine").ConfigureAwait(false);
        if ((problem ?? ListenRule(node)) is { } refused)
        {
            // The loopback rule after the name resolved: "not a loopback address" for a name that names nothing misled.
            return (null, refused);
        }

        return (WireAddress(addresses, isAddress), BindProblem(listen, host, addresses, isAddress, node.ListenPort));
    }

    /// <summary>The address a node joining <paramref name="seed"/> connects to (as Akka does), or why it cannot (<see cref="SeedProblemAsync"/>).</summary>
    private static async Task<(IPAddress? Address, string? Problem)> SeedAddressAsync(string seed)
    {
        var (host, _) = HostPort(seed, "--seed");
        var option = $"--seed {seed}";
        var (addresses, isAddress, problem) = await ResolveAsync(host, option, "give the coordinator's IP address, or a name that resolves here").ConfigureAwait(false);
        if (problem is not null)
        {
            return (null, problem);
        }

        return WireAddress(addresses, isAddress) is { } address
            ? (address, null)
            : (null, $"{option}: '{host}' resolves to no IPv4 address, the only kind Akka connects to for a name ({string.Join(", ", addresses)}); give an IPv6 address in brackets, like [::1]:4053");
    }

    /// <summary>
    /// The address Akka.Remote's DotNetty transport binds or connects to for a host that resolved to
    /// <paramref name="addresses"/>: an IP address as it is (IPv6 too), a name's last IPv4 address (IPv4 unless
    /// <c>dns-use-ipv6</c>); <c>null</c> for a name with no IPv4 address.
    /// </summary>
    private static IPAddress? WireAddress(IReadOnlyList<IPAddress> addresses, bool isAddress) =>
        isAddress ? addresses[0] : addresses.LastOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork);

    /// <summary>
    /// The addresses of <paramref name="host"/> (an IP address, IPv6 in brackets, or a name, resolved within
    /// <see cref="ResolveTimeout"/>), or why it cannot be resolved, said as <paramref name="option"/>'s problem with <paramref name="accepted"/>.
    /// </summary>
    private static async Task<(IPAddress[] Addresses, bool IsAddress, string? Problem)> ResolveAsync(string host, string option, string accepted)
    {
        var literal = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var address))
        {
            return ([address], true, null);
        }

        using var timeout = new CancellationTokenSource(ResolveTimeout);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
            return addresses.Length == 0 ? ([], false, $"{option}: cannot resolve '{host}' ({accepted}): it names no address") : (addresses, false, null);
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            // ArgumentException: a name the resolver refuses outright (HostPort lets none through that it knows of).
            return ([], false, $"{option}: cannot resolve '{host}' ({accepted}): {ex.Message}");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return ([], false, $"{option}: cannot resolve '{host}' ({accepted}): no answer within {ResolveTimeout.TotalSeconds:0} s");
        }
    }

    /// <summary>
    /// Why <paramref name="port"/> cannot be bound on the address of <paramref name="addresses"/> (what
    /// <paramref name="host"/> resolved to; when <paramref name="isAddress"/>, the address it is) that Akka binds
    /// (<see cref="WireAddress"/>); <c>null</c> if it can. A name with no IPv4 address cannot be listened on at all. (Any address that could be
    /// bound was taken as enough: a name whose IPv6 address was free but whose IPv4 port another process held, or whose
    /// last IPv4 address is another machine's, passed, and Akka then failed to bind, with a stack trace and a crash.)
    /// </summary>
    internal static string? BindProblem(string listen, string host, IReadOnlyList<IPAddress> addresses, bool isAddress, int port)
    {
        if (WireAddress(addresses, isAddress) is not { } bound)
        {
            return $"{listen}: '{host}' resolves to no IPv4 address, the only kind Akka listens on for a name ({string.Join(", ", addresses)}); give an IPv6 address in brackets, like [::1]:{port}";
        }

        try
        {
            var probe = new TcpListener(bound, port);
            probe.Start();
            probe.Stop();
            return null;
        }
        catch (SocketException ex)
        {
            return isAddress ? $"{listen}: cannot listen there: {ex.Message}" : $"{listen}: cannot listen there ({host} is {bound} here): {ex.Message}";
        }
    }
}
