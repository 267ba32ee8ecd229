using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;

namespace ActorQueue.Cli.Commands;

/// <summary>The cluster node behind <c>actorqueue run --cluster</c> and <c>actorqueue node</c>.</summary>
internal sealed class ClusterSession : IAsyncDisposable
{
    /// <summary>
    /// Akka's own console output would mix with the jobs' output; everything goes through Serilog instead. And Akka's
    /// process-exit hook is off: on SIGTERM it terminated the actor system at once, beside the runner's own handling (stop
    /// new jobs, let running ones finish, leave the cluster), so a node waiting to join said its TLS handshake had failed
    /// and exited 1, and a coordinator lost its running jobs' results.
    /// </summary>
    private static readonly Config QuietConsole = ConfigurationFactory.ParseString(
        "akka.stdout-loglevel = OFF\nakka.loglevel = WARNING\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off");

    /// <summary>The role of the node that runs <c>actorqueue run --cluster</c>; it distributes jobs and runs none itself.</summary>
    public const string CoordinatorRole = "coordinator";

    /// <summary>The distributed job queue; a coordinator session has one once its worker nodes have joined.</summary>
    private DistributedWorkQueue<RemoteJob, RemoteJobResult>? _queue;

    private ClusterSession(ActorSystem system)
    {
        System = system;
        Cluster = ActorQueueCluster.Get(system);
    }

    public ActorSystem System { get; }

    public ActorQueueCluster Cluster { get; }

    /// <summary>Runs jobs on the worker nodes (coordinator sessions only).</summary>
    public IJobExecutor Executor => new ClusterJobExecutor(_queue ?? throw new InvalidOperationException("not a coordinator session"), System.WhenTerminated);

    /// <summary>
    /// Starts the coordinator: it forms a cluster on <paramref name="node"/>'s address, waits for
    /// <paramref name="minNodes"/> worker nodes, and returns with the distributed job queue ready. <c>null</c> when
    /// stopped while waiting. It always says how to join (without it a quiet run looks hung); <paramref name="quiet"/>
    /// (<c>-q</c>: no progress) leaves out the line that the nodes joined.
    /// </summary>
    public static async Task<ClusterSession?> StartCoordinatorAsync(ClusterNodeOptions node, int minNodes, int capacity,
                                                                     TextWriter stderr, bool quiet, CancellationToken stop)
    {
        WarnIfInsecure(node, stderr);
        var system = ActorQueueClusterRuntime.Create(node with { Roles = [CoordinatorRole] }, QuietConsole);
        var session = new ClusterSession(system);
        try
        {
            await session.Cluster.WhenUpAsync(stop);
            var listen = node.SeedNodes[0];
            var join = node.InsecureLoopback ? ClusterCertificateOptions.InsecureOption : "--cert-dir DIR with a certificate of the same CA";
            stderr.WriteLine($"actorqueue: cluster coordinator on {listen}; waiting for {minNodes} worker node(s) (actorqueue node --seed {listen} {join})");
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (session.WorkerNodes < minNodes)
            {
                if (system.WhenTerminated.IsCompleted)
                {
                    stderr.WriteLine("actorqueue: the coordinator's cluster node stopped (see above)");
                    await session.DisposeAsync();
                    return null;
                }

                await poll.WaitForNextTickAsync(stop);
            }

            if (!quiet)
            {
                stderr.WriteLine($"actorqueue: {session.WorkerNodes} worker node(s) joined; distributing jobs");
            }

            session._queue = session.Cluster.WorkQueue<RemoteJob, RemoteJobResult>(ClusterJobs.QueueName, maxSize: capacity, timeout: Timeout.InfiniteTimeSpan);
            return session;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await session.DisposeAsync();
            return null;
        }
    }

    /// <summary>Starts a worker node that joins the cluster of its seed.</summary>
    public static ClusterSession StartNode(ClusterNodeOptions node, TextWriter stderr)
    {
        WarnIfInsecure(node, stderr);
        return new ClusterSession(ActorQueueClusterRuntime.Create(node, QuietConsole));
    }

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
            ? global::System.Net.IPAddress.TryParse(host[1..^1], out var address) && address.AddressFamily == global::System.Net.Sockets.AddressFamily.InterNetworkV6
            : Uri.CheckHostName(host) is UriHostNameType.Dns or UriHostNameType.IPv4 && host.All(char.IsAscii) // an IDN as xn--
              && host.Length <= MaxHostName; // longer, the resolver refuses it with an exception (a crash, exit 134)
        return valid
            ? (host, port)
            : throw new ArgumentException($"{option} must be HOST:PORT with a host name or IP address (IPv6 in brackets, like [::1]:4053), got '{value}'", option);
    }

    /// <summary>The longest host name there is (DNS's limit, which <see cref="global::System.Net.Dns"/> enforces by throwing).</summary>
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
    public static async Task<string?> ListenProblemAsync(ClusterNodeOptions node)
    {
        if (node.ListenPort == 0)
        {
            return null;
        }

        var host = node.ListenHost;
        var listen = $"--listen {host}:{node.ListenPort}";
        var (addresses, isAddress, problem) = await ResolveAsync(host, listen, "give an IP address or a name of this machine").ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        return BindProblem(listen, host, addresses, isAddress, node.ListenPort);
    }

    /// <summary>
    /// Why a worker node cannot join <paramref name="seed"/> (a checked HOST:PORT): its host name does not resolve (within
    /// <see cref="ResolveTimeout"/>), or resolves to no IPv4 address (Akka.Remote connects to a name's last IPv4 address,
    /// as it binds one); <c>null</c> if it resolves. Akka retried joining a seed that does not resolve for ever, logging a
    /// warning every few seconds; whether the coordinator is up yet is not checked (a node may start first, and waits).
    /// </summary>
    public static async Task<string?> SeedProblemAsync(string seed)
    {
        var (host, _) = HostPort(seed, "--seed");
        var option = $"--seed {seed}";
        var (addresses, isAddress, problem) = await ResolveAsync(host, option, "give the coordinator's IP address, or a name that resolves here").ConfigureAwait(false);
        return problem ?? (isAddress || addresses.Any(a => a.AddressFamily == global::System.Net.Sockets.AddressFamily.InterNetwork)
            ? null
            : $"{option}: '{host}' resolves to no IPv4 address, the only kind Akka connects to for a name ({string.Join(", ", addresses)}); give an IPv6 address in brackets, like [::1]:4053");
    }

    /// <summary>
    /// The addresses of <paramref name="host"/> (an IP address, IPv6 in brackets, or a name, resolved within
    /// <see cref="ResolveTimeout"/>), or why it cannot be resolved, said as <paramref name="option"/>'s problem with <paramref name="accepted"/>.
    /// </summary>
    private static async Task<(global::System.Net.IPAddress[] Addresses, bool IsAddress, string? Problem)> ResolveAsync(string host, string option, string accepted)
    {
        var literal = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;
        if (global::System.Net.IPAddress.TryParse(literal, out var address))
        {
            return ([address], true, null);
        }

        using var timeout = new CancellationTokenSource(ResolveTimeout);
        try
        {
            var addresses = await global::System.Net.Dns.GetHostAddressesAsync(host, timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
            return addresses.Length == 0 ? ([], false, $"{option}: cannot resolve '{host}' ({accepted}): it names no address") : (addresses, false, null);
        }
        catch (Exception ex) when (ex is global::System.Net.Sockets.SocketException or ArgumentException)
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
    /// <paramref name="host"/> resolved to; when <paramref name="isAddress"/>, the address it is) that Akka binds; <c>null</c> if it can. For a name that is its last IPv4
    /// address (Akka.Remote's DotNetty transport resolves a name and binds the last address of its IP family, IPv4 unless
    /// <c>dns-use-ipv6</c>), so a name with no IPv4 address cannot be listened on at all. (Any address that could be
    /// bound was taken as enough: a name whose IPv6 address was free but whose IPv4 port another process held, or whose
    /// last IPv4 address is another machine's, passed, and Akka then failed to bind, with a stack trace and a crash.)
    /// </summary>
    internal static string? BindProblem(string listen, string host, IReadOnlyList<global::System.Net.IPAddress> addresses, bool isAddress, int port)
    {
        global::System.Net.IPAddress bound;
        if (isAddress)
        {
            bound = addresses[0]; // an IP address: Akka binds it as it is, IPv6 too
        }
        else if (addresses.LastOrDefault(a => a.AddressFamily == global::System.Net.Sockets.AddressFamily.InterNetwork) is { } ipv4)
        {
            bound = ipv4;
        }
        else
        {
            return $"{listen}: '{host}' resolves to no IPv4 address, the only kind Akka listens on for a name ({string.Join(", ", addresses)}); give an IPv6 address in brackets, like [::1]:{port}";
        }

        try
        {
            var probe = new global::System.Net.Sockets.TcpListener(bound, port);
            probe.Start();
            probe.Stop();
            return null;
        }
        catch (global::System.Net.Sockets.SocketException ex)
        {
            return isAddress ? $"{listen}: cannot listen there: {ex.Message}" : $"{listen}: cannot listen there ({host} is {bound} here): {ex.Message}";
        }
    }

    private static void WarnIfInsecure(ClusterNodeOptions node, TextWriter stderr)
    {
        if (node.InsecureLoopback)
        {
            stderr.WriteLine($"actorqueue: WARNING: {ClusterCertificateOptions.InsecureOption}: this cluster authenticates no one; any process on this host can join it and run commands on its worker nodes");
        }
    }

    /// <summary>Worker-role members that are Up.</summary>
    public int WorkerNodes => Cluster.Cluster.State.Members.Count(member => member.Status == MemberStatus.Up && member.HasRole(Cluster.Settings.WorkerRole));

    /// <summary>Leaves the cluster (running items elsewhere are unaffected) and shuts the node down.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_queue is not null)
        {
            await _queue.DisposeAsync();
        }

        if (!System.WhenTerminated.IsCompleted)
        {
            try
            {
                await Cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                // A node that could not leave in time is simply shut down; the others down it.
            }
        }

        await System.Terminate();
    }
}
