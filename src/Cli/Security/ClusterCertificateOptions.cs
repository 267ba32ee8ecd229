using ActorQueue.Cluster;

namespace ActorQueue.Cli.Security;

/// <summary>
/// The certificate options of <c>run --cluster</c> and <c>node</c>, as given: <c>--cert-dir DIR</c>, or <c>--cert
/// FILE.pfx --ca FILE.crt</c>, or <c>--insecure-loopback</c>. <see cref="NodeOptions"/> reads the files and checks
/// everything before any node starts.
/// </summary>
internal sealed record ClusterCertificateOptions
{
    public const string InsecureOption = "--insecure-loopback";

    public string? CertDir { get; init; }

    public string? Cert { get; init; }

    public string? Ca { get; init; }

    public bool InsecureLoopback { get; init; }

    /// <summary>Whether any of these options was given.</summary>
    public bool Given => CertDir is not null || Cert is not null || Ca is not null || InsecureLoopback;

    /// <summary>
    /// <paramref name="node"/> with the certificate and the CAs these options name, read from their files and
    /// validated as the node will be (<see cref="ClusterNodeOptions.Validate"/>).
    /// </summary>
    /// <param name="node">Where the node listens and its seeds.</param>
    /// <param name="command">The command, for the message when no option was given.</param>
    /// <returns>The node's options.</returns>
    /// <exception cref="ArgumentException">A one-line problem naming the option and its value.</exception>
    public ClusterNodeOptions NodeOptions(ClusterNodeOptions node, string command)
    {
        if (InsecureLoopback)
        {
            if (CertDir is not null || Cert is not null || Ca is not null)
            {
                throw new ArgumentException($"{InsecureOption} turns authentication off; it cannot be combined with --cert, --ca or --cert-dir", InsecureOption);
            }

            if (node.AllowNonLoopback)
            {
                throw new ArgumentException($"{InsecureOption} is for loopback only; it cannot be combined with --allow-remote", InsecureOption);
            }

            return Checked(node with { InsecureLoopback = true }, Addresses(command));
        }

        if (!Given)
        {
            throw new ArgumentException(
                $"{command} needs the node's certificate: --cert-dir DIR (from 'actorqueue cert node'), or --cert FILE.pfx --ca FILE.crt; {InsecureOption} runs an unauthenticated cluster on loopback, for development only",
                "--cert-dir");
        }

        if (CertDir is not null && (Cert is not null || Ca is not null))
        {
            throw new ArgumentException("--cert-dir names both files (node.pfx and ca.crt); do not combine it with --cert or --ca", "--cert-dir");
        }

        var (certOption, certPath) = CertDir is not null ? ("--cert-dir", Path.Combine(CertDir, CertificateFiles.NodeBundle)) : ("--cert", Cert);
        var (caOption, caPath) = CertDir is not null ? ("--cert-dir", Path.Combine(CertDir, CertificateFiles.AuthorityCertificate)) : ("--ca", Ca);
        if (certPath is null || caPath is null)
        {
            throw new ArgumentException(
                certPath is null ? "--ca needs --cert FILE.pfx, the node's own certificate and key" : "--cert needs --ca FILE.crt, the cluster CA that peers' certificates must chain to",
                certPath is null ? "--cert" : "--ca");
        }

        var certificate = CertificateFiles.ReadNode(certOption, certPath);
        var authorities = CertificateFiles.ReadAuthorities(caOption, caPath);
        return Checked(node with { Certificate = certificate, TrustedAuthorities = authorities },
            [.. Addresses(command), (nameof(ClusterNodeOptions.Certificate), $"{certOption} '{certPath}'"), (nameof(ClusterNodeOptions.TrustedAuthorities), $"{caOption} '{caPath}'")]);
    }

    /// <summary>An argument exception's message as a one-line usage problem, without .NET's "(Parameter '...')" suffix.</summary>
    public static string Problem(ArgumentException exception) => exception.Message.Split(" (Parameter '", 2)[0];

    /// <summary>
    /// The CLI options the node's addresses came from: its own is --listen; its seed is a node's --seed, and a
    /// coordinator's own --listen (<paramref name="command"/> is "node" or "--cluster").
    /// </summary>
    private static (string Parameter, string Option)[] Addresses(string command) =>
    [
        (nameof(ClusterNodeOptions.ListenHost), "--listen"),
        (nameof(ClusterNodeOptions.SeedNodes), command == "node" ? "--seed" : "--listen"),
    ];

    /// <summary>Validates the node's options, naming the CLI option a library parameter came from.</summary>
    private static ClusterNodeOptions Checked(ClusterNodeOptions node, params (string Parameter, string Option)[] sources)
    {
        try
        {
            node.Validate();
            return node;
        }
        catch (ArgumentException ex)
        {
            var source = sources.FirstOrDefault(source => source.Parameter == ex.ParamName).Option;
            var message = Problem(ex);
            throw new ArgumentException(source is null ? message : $"{source}: {message}", ex.ParamName, ex);
        }
    }
}
