using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary><c>actorqueue cert</c>, and the certificate options of <c>run --cluster</c> and <c>node</c> when they are wrong.</summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterCertificateCliTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-cert-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Cert_writes_a_CA_and_node_certificates_that_chain_to_it_with_owner_only_private_keys()
    {
        var authority = X509Certificate2.CreateFromPemFile(Path.Combine(certificates.Authority, "ca.crt"), Path.Combine(certificates.Authority, "ca.key"));
        var worker = X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(certificates.Worker, "node.pfx"), null);

        Assert.True(ClusterCertificates.IsAuthority(authority));
        Assert.True(worker.HasPrivateKey);
        Assert.Equal("CN=worker", worker.Subject);
        Assert.Equal(authority.Subject, worker.Issuer);
        Assert.Null(new PeerCertificateValidator([authority], []).Refusal(worker, null));
        Assert.Equal(File.ReadAllText(Path.Combine(certificates.Authority, "ca.crt")), File.ReadAllText(Path.Combine(certificates.Worker, "ca.crt")));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.Combine(certificates.Authority, "ca.key")));
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.Combine(certificates.Worker, "node.pfx")));
            Assert.Equal(OwnerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(certificates.Worker));
        }
    }

    [Fact]
    public async Task Cert_never_overwrites_a_key_and_refuses_bad_arguments_by_name()
    {
        var again = await CliProcess.RunAsync(_dir, null, "cert", "ca", "--out", certificates.Authority);
        AssertUsageError(again, $"'{Path.Combine(certificates.Authority, "ca.crt")}' already exists");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "node", "--ca", certificates.Authority, "--name", "again", "--out", certificates.Worker),
            $"'{Path.Combine(certificates.Worker, "node.pfx")}' already exists");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "node", "--ca", PathOf("nowhere"), "--name", "n", "--out", PathOf("n")),
            $"--ca '{Path.Combine(PathOf("nowhere"), "ca.crt")}': its directory '{PathOf("nowhere")}' does not exist");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "node", "--ca", certificates.Authority, "--out", PathOf("n")), "--name is required and not empty: the node's name");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "ca", "--out", PathOf("c"), "--days", "0"), "--days takes a whole number of days in 1..36500, got '0'");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "root", "--out", PathOf("c")), "cert takes 'ca' or 'node', got 'root'");
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "cert", "ca", "--name", "", "--out", PathOf("c")), "--name is required and not empty");
        Assert.False(Directory.Exists(PathOf("n")));
        Assert.False(Directory.Exists(PathOf("c")));
    }

    [Fact]
    public async Task Private_keys_written_with_a_password_open_only_with_it()
    {
        var password = new Dictionary<string, string> { ["ACTORQUEUE_CA_PASSWORD"] = "s3cret", ["ACTORQUEUE_CERT_PASSWORD"] = "s3cret" };
        var wrong = new Dictionary<string, string> { ["ACTORQUEUE_CA_PASSWORD"] = "guess" };
        Assert.Equal(0, await ExitAsync(password, "cert", "ca", "--out", PathOf("ca")));

        var withoutPassword = await CliProcess.RunAsync(_dir, null, "cert", "node", "--ca", PathOf("ca"), "--name", "n", "--out", PathOf("n"));
        AssertUsageError(withoutPassword, $"--ca '{Path.Combine(PathOf("ca"), "ca.key")}' is not the PEM private key");
        Assert.Equal(255, await ExitAsync(wrong, "cert", "node", "--ca", PathOf("ca"), "--name", "n", "--out", PathOf("n")));
        Assert.Equal(0, await ExitAsync(password, "cert", "node", "--ca", PathOf("ca"), "--name", "n", "--out", PathOf("n")));

        var bundle = Path.Combine(PathOf("n"), "node.pfx");
        Assert.ThrowsAny<CryptographicException>(() => X509CertificateLoader.LoadPkcs12FromFile(bundle, null));
        Assert.True(X509CertificateLoader.LoadPkcs12FromFile(bundle, "s3cret").HasPrivateKey);
        AssertUsageError(await CliProcess.RunAsync(_dir, null, "node", "--seed", "127.0.0.1:9", "--cert-dir", PathOf("n")),
            $"--cert-dir '{bundle}' is not a PKCS#12 (.pfx) file this password opens (ACTORQUEUE_CERT_PASSWORD is not set)");
    }

    [Fact]
    public async Task The_ca_key_and_the_node_keys_have_passwords_of_their_own()
    {
        var caOnly = new Dictionary<string, string> { ["ACTORQUEUE_CA_PASSWORD"] = "ca-secret" };
        var both = new Dictionary<string, string> { ["ACTORQUEUE_CA_PASSWORD"] = "ca-secret", ["ACTORQUEUE_CERT_PASSWORD"] = "node-secret" };
        var nodeOnly = new Dictionary<string, string> { ["ACTORQUEUE_CERT_PASSWORD"] = "node-secret" };
        Assert.Equal(0, await ExitAsync(caOnly, "cert", "ca", "--out", PathOf("ca")));
        Assert.Equal(0, await ExitAsync(nodeOnly, "cert", "ca", "--out", PathOf("plain-ca")));

        Assert.Equal(255, await ExitAsync(nodeOnly, "cert", "node", "--ca", PathOf("ca"), "--name", "n", "--out", PathOf("n")));
        Assert.Equal(0, await ExitAsync(both, "cert", "node", "--ca", PathOf("ca"), "--name", "n", "--out", PathOf("n")));
        Assert.Equal(0, await ExitAsync(nodeOnly, "cert", "node", "--ca", PathOf("plain-ca"), "--name", "m", "--out", PathOf("m")));

        Assert.ThrowsAny<CryptographicException>(() => X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(PathOf("n"), "node.pfx"), "ca-secret"));
        Assert.True(X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(PathOf("n"), "node.pfx"), "node-secret").HasPrivateKey);
        Assert.True(X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(PathOf("m"), "node.pfx"), "node-secret").HasPrivateKey);
        Assert.DoesNotContain("ENCRYPTED", File.ReadAllText(Path.Combine(PathOf("plain-ca"), "ca.key")), StringComparison.Ordinal);
    }

    /// <summary>Every case: exit 255 with one line naming the problem, before a node (or the joblog) exists.</summary>
    [Theory]
    [InlineData("run --cluster", "--cluster needs the node's certificate: --cert-dir DIR")]
    [InlineData("run --cluster --cert-dir {dir}/missing", "--cert-dir '{dir}/missing/node.pfx': its directory '{dir}/missing' does not exist")]
    [InlineData("run --cluster --cert {worker}/node.pfx", "--cert needs --ca FILE.crt")]
    [InlineData("run --cluster --ca {ca}/ca.crt", "--ca needs --cert FILE.pfx")]
    [InlineData("run --cluster --cert {worker}/node.pfx --ca {worker}/node.crt", "--ca '{worker}/node.crt' holds 'CN=worker', which is not a CA certificate")]
    [InlineData("run --cluster --cert {worker}/node.crt --ca {ca}/ca.crt", "--cert '{worker}/node.crt' is not a PKCS#12 (.pfx) file")]
    [InlineData("run --cluster --cert {worker} --ca {ca}/ca.crt", "--cert '{worker}': cannot read it")]
    [InlineData("run --cluster --cert {worker}/node.pfx --ca {dir}/other.crt", "--cert '{worker}/node.pfx' is not accepted by --ca '{dir}/other.crt', so no peer that trusts those CAs would accept it")]
    [InlineData("run --cluster --cert-dir {worker} --cert-dir {worker}", "--cert-dir given twice")]
    [InlineData("run --cluster --cert-dir {worker} --ca {ca}/ca.crt", "--cert-dir names both files")]
    [InlineData("run --cluster --insecure-loopback --cert-dir {worker}", "--insecure-loopback turns authentication off")]
    [InlineData("run --cluster --insecure-loopback --allow-remote --listen 0.0.0.0:{port}", "--insecure-loopback is for loopback only; it cannot be combined with --allow-remote")]
    [InlineData("run --cluster --insecure-loopback --allow-remote", "--insecure-loopback is for loopback only; it cannot be combined with --allow-remote")]
    [InlineData("node --seed 127.0.0.1:{port} --insecure-loopback --allow-remote", "--insecure-loopback is for loopback only; it cannot be combined with --allow-remote")]
    [InlineData("run --cert-dir {worker}", "--cert, --ca, --cert-dir and --insecure-loopback only apply with --cluster")]
    [InlineData("node --seed 127.0.0.1:{port}", "node needs the node's certificate")]
    [InlineData("node --seed 127.0.0.1:{port} --cert-dir {dir}/missing", "--cert-dir '{dir}/missing/node.pfx': its directory '{dir}/missing' does not exist")]
    [InlineData("node --seed 10.1.2.3:{port} --insecure-loopback", "--seed 10.1.2.3:{port}: '10.1.2.3' is not a loopback address, and a node with --insecure-loopback (no authentication) joins loopback seeds only")]
    public async Task A_missing_or_bad_certificate_option_is_a_one_line_usage_error_before_anything_starts(string command, string problem)
    {
        using var other = ClusterCertificates.CreateAuthority("other CA", TimeSpan.FromDays(1));
        File.WriteAllText(PathOf("other.crt"), other.ExportCertificatePem());
        File.WriteAllText(PathOf("jobs.txt"), "echo never\n");
        var port = TestPorts.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
        string Expand(string text) => text.Replace("{dir}", _dir).Replace("{worker}", certificates.Worker).Replace("{ca}", certificates.Authority).Replace("{port}", port);
        var args = Expand(command).Split(' ').ToList();
        if (args[0] == "run")
        {
            args.InsertRange(1, ["jobs.txt", "--joblog", "log.tsv"]);
            if (args.Contains("--cluster") && !args.Contains("--listen"))
            {
                args.AddRange(["--listen", $"127.0.0.1:{port}"]);
            }
        }

        var result = await CliProcess.RunAsync(_dir, null, [.. args]);

        AssertUsageError(result, Expand(problem));
        Assert.False(File.Exists(PathOf("log.tsv")));
    }

    private async Task<int> ExitAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var cli = new RunningCli(_dir, environment, args);
        return await cli.ExitAsync();
    }

    /// <summary>A one-line usage error (exit 255, nothing on stdout) that contains <paramref name="problem"/>.</summary>
    internal static void AssertUsageError(CliResult result, string problem)
    {
        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        Assert.Equal("", result.Output);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(problem, line, StringComparison.Ordinal);
        Assert.EndsWith("; see 'actorqueue --help'", line, StringComparison.Ordinal);
    }
}
