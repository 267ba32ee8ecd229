using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cli.Commands;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 221: what <c>run --cluster</c> and <c>node</c> say about their addresses and certificates, in the options the
/// user typed (<c>--listen</c>, <c>--seed</c>, <c>--insecure-loopback</c>, <c>--cert</c>, <c>--ca</c>), never the
/// library's property names, and in the order that makes them true (a name that does not resolve is not "not loopback").
/// Every case exits at once (no node starts).
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CliClusterMessagesRound49Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private const string Unresolvable = "no-such-host.invalid";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A <c>--listen</c> (or <c>--seed</c>) host that does not resolve is said not to resolve, with or without
    /// <c>--allow-remote</c>, and before the joblog exists.
    /// Failed before: "actorqueue: --listen: ListenHost 'no-such-host.invalid' is not a loopback address; binding to
    /// the network is an explicit choice: set AllowNonLoopback (CLI: --allow-remote)" (and with --insecure-loopback
    /// "...; InsecureLoopback (no authentication) is allowed on loopback only"; for --seed "--seed: SeedNodes must be
    /// loopback addresses with InsecureLoopback, got 'no-such-host.invalid:4000'"); with --allow-remote the right line,
    /// but only after log.tsv had been created.
    /// Mutant: the old code is the loopback rule before resolving: every case but the --allow-remote one failed, and that
    /// one on the joblog (the resolve check where RunCommand makes it, after opening the joblog).
    /// </summary>
    [Theory]
    [InlineData("--listen", "run --cluster --listen {host}:4000 --cert-dir {worker}")]
    [InlineData("--listen", "run --cluster --listen {host}:4000 --insecure-loopback")]
    [InlineData("--listen", "run --cluster --listen {host}:4000 --allow-remote --cert-dir {worker}")]
    [InlineData("--listen", "node --seed 127.0.0.1:4000 --listen {host}:4001 --cert-dir {worker}")]
    [InlineData("--listen", "node --seed 127.0.0.1:4000 --listen {host}:4001 --insecure-loopback")]
    [InlineData("--seed", "node --seed {host}:4000 --insecure-loopback")]
    public async Task An_unresolvable_host_is_said_not_to_resolve(string option, string command)
    {
        var result = await RunAsync(command);

        var port = option == "--listen" && command.StartsWith("node", StringComparison.Ordinal) ? 4001 : 4000;
        ClusterCertificateCliTests.AssertUsageError(result, $"actorqueue: {option} {Unresolvable}:{port}: cannot resolve '{Unresolvable}' (");
        Assert.False(File.Exists(_scratch.PathOf("log.tsv")), "the joblog was created before the refusal");
    }

    /// <summary>
    /// The cluster's refusals name the options as typed, with their values.
    /// Failed before: "--listen: ListenHost '10.1.2.3' is not a loopback address; InsecureLoopback (no authentication)
    /// is allowed on loopback only", "--listen: ListenHost '10.1.2.3' is not a loopback address; binding to the network
    /// is an explicit choice: set AllowNonLoopback (CLI: --allow-remote)", "--seed: SeedNodes must be loopback addresses
    /// with InsecureLoopback, got '10.1.2.3:4000'" and "--cert '.../node.pfx': Certificate is not accepted by this
    /// node's own TrustedAuthorities and PinnedCertificates, so no peer would accept it: ...".
    /// Mutant (reasoned): the library's message with its property names replaced by flags: the exact lines differ, and
    /// the property-name check catches any library text left.
    /// </summary>
    [Theory]
    [InlineData("run --cluster --listen 10.1.2.3:4000 --insecure-loopback",
        "--listen 10.1.2.3:4000: '10.1.2.3' is not a loopback address, and --insecure-loopback (no authentication) runs on loopback only")]
    [InlineData("run --cluster --listen 10.1.2.3:4000 --cert-dir {worker}",
        "--listen 10.1.2.3:4000: '10.1.2.3' is not a loopback address; listening on the network is an explicit choice: add --allow-remote")]
    [InlineData("node --seed 127.0.0.1:4000 --listen 10.1.2.3:4001 --cert-dir {worker}",
        "--listen 10.1.2.3:4001: '10.1.2.3' is not a loopback address; listening on the network is an explicit choice: add --allow-remote")]
    [InlineData("node --seed 127.0.0.1:4000 --listen 10.1.2.3:4001 --insecure-loopback",
        "--listen 10.1.2.3:4001: '10.1.2.3' is not a loopback address, and --insecure-loopback (no authentication) runs on loopback only")]
    [InlineData("node --seed 10.1.2.3:4000 --insecure-loopback",
        "--seed 10.1.2.3:4000: '10.1.2.3' is not a loopback address, and a node with --insecure-loopback (no authentication) joins loopback seeds only")]
    [InlineData("run --cluster --listen 127.0.0.1:4000 --cert {worker}/node.pfx --ca {dir}/other.crt",
        "--cert '{worker}/node.pfx' is not accepted by --ca '{dir}/other.crt', so no peer that trusts those CAs would accept it: the certificate 'CN=worker'")]
    [InlineData("node --seed 127.0.0.1:4000 --cert {worker}/node.pfx --ca {dir}/other.crt",
        "--cert '{worker}/node.pfx' is not accepted by --ca '{dir}/other.crt', so no peer that trusts those CAs would accept it: the certificate 'CN=worker'")]
    public async Task A_cluster_refusal_names_the_options_as_typed(string command, string problem)
    {
        using var other = ClusterCertificates.CreateAuthority("other CA", TimeSpan.FromDays(1));
        File.WriteAllText(_scratch.PathOf("other.crt"), other.ExportCertificatePem());

        var result = await RunAsync(command);

        ClusterCertificateCliTests.AssertUsageError(result, $"actorqueue: {Expand(problem)}");
        foreach (var property in (string[])["ListenHost", "SeedNodes", "InsecureLoopback", "AllowNonLoopback", "Certificate ", "TrustedAuthorities", "PinnedCertificates"])
        {
            Assert.DoesNotContain(property, result.Errors, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A node that listens on loopback (no <c>--listen</c>, or a loopback one) cannot be reached by a coordinator on
    /// another machine: its <c>--seed</c> there is refused up front, naming both options. A seed on one of this
    /// machine's own addresses is not: a coordinator on this machine reaches the node's loopback.
    /// Failed before: WorkerProblemAsync returned null, and the node started and waited to join for ever (the
    /// coordinator's replies went to 127.0.0.1, on its own machine).
    /// Mutant tried: refusing every non-loopback seed (without asking whether it is this machine's): the last part failed
    /// where the machine has a non-loopback address (it is skipped where it has none).
    /// </summary>
    [Fact]
    public async Task A_loopback_node_refuses_a_seed_on_another_machine()
    {
        const string seed = "203.0.113.1:4000"; // TEST-NET-3, a documentation range: not expected to be this machine's (the test host's own is 192.0.2.2)
        var unlistened = await ClusterSession.WorkerProblemAsync(ClusterSession.Worker(seed, "", allowRemote: false), seed);
        Assert.Equal(
            $"--seed {seed} is another machine's address (203.0.113.1), but without --listen this node listens on loopback, where a coordinator there cannot reach it: give --listen HOST:PORT (an address of this machine that the coordinator reaches) with --allow-remote",
            unlistened);

        var loopback = $"127.0.0.1:{TestPorts.Free()}";
        var listened = await ClusterSession.WorkerProblemAsync(ClusterSession.Worker(seed, loopback, allowRemote: false), seed);
        Assert.Equal(
            $"--seed {seed} is another machine's address (203.0.113.1), but --listen {loopback} is loopback, where a coordinator there cannot reach it: give --listen HOST:PORT (an address of this machine that the coordinator reaches) with --allow-remote",
            listened);

        if (OwnAddress() is { } own)
        {
            var ownSeed = $"{own}:{TestPorts.Free()}";
            Assert.Null(await ClusterSession.WorkerProblemAsync(ClusterSession.Worker(ownSeed, "", allowRemote: false), ownSeed));
        }
    }

    /// <summary>The process of the refusal above: one line, exit 255, before the node starts.</summary>
    [Fact]
    public async Task A_node_without_listen_refuses_a_remote_seed_as_a_usage_error()
    {
        var result = await RunAsync("node --seed 203.0.113.1:4000 --cert-dir {worker}");

        ClusterCertificateCliTests.AssertUsageError(result, "actorqueue: --seed 203.0.113.1:4000 is another machine's address (203.0.113.1), but without --listen this node listens on loopback");
    }

    /// <summary>
    /// A node certificate that is not valid now (expired, or not yet valid) is refused naming the option and the file.
    /// Failed before: "--cert '.../old.pfx': Certificate 'CN=old' is not valid now (valid ... to ...)", the library's
    /// property name.
    /// Mutant: the CLI check disabled (the library's check only, as before): failed ("--cert '.../old.pfx': Certificate
    /// 'CN=old' is not valid now ...").
    /// </summary>
    [Fact]
    public void An_expired_node_certificate_is_named_by_its_option()
    {
        using var authority = ClusterCertificates.CreateAuthority("test CA", TimeSpan.FromDays(10));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=old", key, HashAlgorithmName.SHA256);
        var issued = new DateTimeOffset(authority.NotBefore.ToUniversalTime(), TimeSpan.Zero); // a few minutes ago: expired since
        using var signed = request.Create(authority, issued, issued.AddSeconds(1), [1, 2, 3, 4]);
        using var old = signed.CopyWithPrivateKey(key);
        var pfx = _scratch.PathOf("old.pfx");
        var ca = _scratch.PathOf("ca.crt");
        File.WriteAllBytes(pfx, old.Export(X509ContentType.Pkcs12));
        File.WriteAllText(ca, authority.ExportCertificatePem());

        var error = Assert.Throws<ArgumentException>(() =>
            new ActorQueue.Cli.Security.ClusterCertificateOptions { Cert = pfx, Ca = ca }.NodeOptions(ClusterSession.Coordinator("127.0.0.1:4000", allowRemote: false), "--cluster"));

        Assert.StartsWith($"--cert '{pfx}' holds 'CN=old', valid ", error.Message, StringComparison.Ordinal);
        Assert.Contains(", not now ('actorqueue cert node' issues a new one)", error.Message, StringComparison.Ordinal);
    }

    private static IPAddress? OwnAddress()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces().SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address)
                .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        }
        catch (NetworkInformationException)
        {
            return null;
        }
    }

    private string Expand(string text) =>
        text.Replace("{host}", Unresolvable, StringComparison.Ordinal).Replace("{worker}", certificates.Worker, StringComparison.Ordinal)
            .Replace("{dir}", _scratch.Dir, StringComparison.Ordinal);

    private Task<CliResult> RunAsync(string command)
    {
        var args = Expand(command).Split(' ').ToList();
        if (args[0] == "run")
        {
            _scratch.Write("jobs.txt", "echo never");
            args.InsertRange(1, ["jobs.txt", "--joblog", "log.tsv"]);
        }

        return CliProcess.RunAsync(_scratch.Dir, null, [.. args]);
    }
}
