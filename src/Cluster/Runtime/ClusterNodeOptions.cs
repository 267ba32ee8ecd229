using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace ActorQueue.Cluster;

/// <summary>
/// How a node joins an ActorQueue cluster: where it listens, which seed nodes it contacts, its roles, and how it
/// proves and checks membership. A node needs a <see cref="Certificate"/> and the CAs or pinned certificates it trusts;
/// only <see cref="InsecureLoopback"/> runs without, and only on loopback.
/// </summary>
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
    /// Allows <see cref="ListenHost"/> to be an address other than loopback, so nodes on other machines can connect.
    /// Only an authenticated node (with a <see cref="Certificate"/>) may; see <c>docs/SECURITY.md</c>.
    /// </summary>
    public bool AllowNonLoopback { get; init; }

    /// <summary>
    /// The node's certificate, with its private key: it proves membership to every peer (mutual TLS on the remoting
    /// transport). Create one with <see cref="ClusterCertificates.IssueNode"/> or <c>actorqueue cert node</c>.
    /// Required unless <see cref="InsecureLoopback"/>.
    /// </summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>
    /// The CAs whose node certificates are members: a peer must present a certificate that chains to one of them,
    /// or one of <see cref="PinnedCertificates"/>. The machine's trust store is never used. List the old and the new
    /// CA while rotating.
    /// </summary>
    public IReadOnlyList<X509Certificate2> TrustedAuthorities { get; init; } = [];

    /// <summary>Peer certificates accepted as they are (compared by their SHA-256 fingerprint), e.g. self-signed ones.</summary>
    public IReadOnlyList<X509Certificate2> PinnedCertificates { get; init; } = [];

    /// <summary>
    /// INSECURE, for development only: no TLS and no authentication, so every process that can reach the node's port
    /// (any local user) can join the cluster and run commands on its worker nodes. Allowed only when the node and its
    /// seeds are on loopback, and not with <see cref="Certificate"/> or <see cref="AllowNonLoopback"/>.
    /// </summary>
    public bool InsecureLoopback { get; init; }

    /// <summary>
    /// Makes the distributed queues whose router this node hosts durable: the router journals every accepted item
    /// (a put is acknowledged only once written), every hand-out and every result, and a router that starts on this
    /// node reads the journal back first, so losing every node at once loses no accepted item. <c>null</c> (the
    /// default): routers keep their items in memory and rely on the producers to re-announce them. Give every node
    /// that may host the singleton the same storage: a SQLite file all of them reach (one machine, or a shared
    /// disk), or, across machines, a PostgreSQL journal (<see cref="ActorQueue.Actors.QueueDurability.JournalPluginId"/>).
    /// Only the storage and <see cref="ActorQueue.Actors.QueueDurability.SnapshotEvery"/> apply here; retries,
    /// priorities and delays are the local durable queue's.
    /// </summary>
    public ActorQueue.Actors.QueueDurability? QueueDurability { get; init; }

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

        CheckListenHost(ListenHost, nameof(ListenHost));
        foreach (var seed in SeedNodes)
        {
            var (host, _) = ParseHostPort(seed, nameof(SeedNodes));
            if (InsecureLoopback && !IsLoopback(host))
            {
                throw new ArgumentException($"SeedNodes must be loopback addresses with InsecureLoopback, got '{seed}'", nameof(SeedNodes));
            }
        }

        if (InsecureLoopback)
        {
            if (Certificate is not null || TrustedAuthorities.Count > 0 || PinnedCertificates.Count > 0)
            {
                throw new ArgumentException("InsecureLoopback turns authentication off; it cannot be combined with Certificate, TrustedAuthorities or PinnedCertificates", nameof(InsecureLoopback));
            }

            return;
        }

        ValidateCredentials();
    }

    /// <summary>Checks the address the transport binds to (also after configuration overrides).</summary>
    /// <param name="host">The host the transport binds to.</param>
    /// <param name="parameterName">Where it came from, named in the exception.</param>
    /// <exception cref="ArgumentException">The host is not allowed with these options.</exception>
    internal void CheckListenHost(string host, string parameterName)
    {
        if (IsLoopback(host))
        {
            return;
        }

        if (InsecureLoopback)
        {
            throw new ArgumentException($"{parameterName} '{host}' is not a loopback address; InsecureLoopback (no authentication) is allowed on loopback only", parameterName);
        }

        if (!AllowNonLoopback)
        {
            throw new ArgumentException(
                $"{parameterName} '{host}' is not a loopback address; binding to the network is an explicit choice: set AllowNonLoopback (CLI: --allow-remote)",
                parameterName);
        }
    }

    private void ValidateCredentials()
    {
        if (Certificate is null)
        {
            throw new ArgumentException(
                "Certificate is required: cluster nodes authenticate each other with certificates from a CA they trust (create them with ClusterCertificates or 'actorqueue cert'); InsecureLoopback runs a development cluster on loopback without them",
                nameof(Certificate));
        }

        if (!Certificate.HasPrivateKey)
        {
            throw new ArgumentException($"Certificate '{Certificate.Subject}' has no private key; a node needs its own key to prove membership", nameof(Certificate));
        }

        var now = DateTime.Now;
        if (now < Certificate.NotBefore || now > Certificate.NotAfter)
        {
            throw new ArgumentException($"Certificate '{Certificate.Subject}' is not valid now (valid {Certificate.NotBefore:u} to {Certificate.NotAfter:u})", nameof(Certificate));
        }

        if (TrustedAuthorities.Count == 0 && PinnedCertificates.Count == 0)
        {
            throw new ArgumentException("TrustedAuthorities or PinnedCertificates must name who may join: without them a node would trust nobody (or, worse, everybody)", nameof(TrustedAuthorities));
        }

        if (TrustedAuthorities.FirstOrDefault(authority => !ClusterCertificates.IsAuthority(authority)) is { } notAuthority)
        {
            throw new ArgumentException($"TrustedAuthorities must be CA certificates, got '{notAuthority.Subject}'; pin a node's own certificate with PinnedCertificates", nameof(TrustedAuthorities));
        }

        // Peers check this node the same way it checks them, so a certificate its own trust refuses is a mistake.
        if (PeerValidator().Refusal(Certificate, presented: null) is { } refusal)
        {
            throw new ArgumentException($"Certificate is not accepted by this node's own TrustedAuthorities and PinnedCertificates, so no peer would accept it: {refusal}", nameof(Certificate));
        }
    }

    /// <summary>The validator for peers' certificates these options describe.</summary>
    internal PeerCertificateValidator PeerValidator() => new(TrustedAuthorities, PinnedCertificates);

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

    /// <summary>Whether <paramref name="host"/> is <c>localhost</c> or a loopback IP address.</summary>
    internal static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
