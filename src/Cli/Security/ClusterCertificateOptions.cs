using ActorQueue.Cli.Commands;
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
    /// The node's certificate file and CA file as a message names them (<c>--cert-dir 'D/node.pfx'</c>, <c>--cert 'F'</c>),
    /// or <c>null</c> when they are not both given.
    /// </summary>
    public (string Certificate, string Authorities)? Files => CertDir is not null
        ? ($"--cert-dir '{Path.Combine(CertDir, CertificateFiles.NodeBundle)}'", $"--cert-dir '{Path.Combine(CertDir, CertificateFiles.AuthorityCertificate)}'")
        : Cert is not null && Ca is not null ? ($"--cert '{Cert}'", $"--ca '{Ca}'") : null;

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

            return Checked(node with { InsecureLoopback = true }, command);
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
        var trusted = node with { Certificate = certificate, TrustedAuthorities = authorities };

        // The library's check, said with the options: peers check this node as it checks them (Validate refuses the same).
        if (trusted.PeerValidator().Refusal(certificate, presented: null) is { } refusal)
        {
            throw new ArgumentException($"{certOption} '{certPath}' is not accepted by {caOption} '{caPath}', so no peer that trusts those CAs would accept it: {refusal}", certOption);
        }

        return Checked(trusted, command, (nameof(ClusterNodeOptions.Certificate), $"{certOption} '{certPath}'"), (nameof(ClusterNodeOptions.TrustedAuthorities), $"{caOption} '{caPath}'"));
    }

    /// <summary>An argument exception's message as a one-line usage problem, without .NET's "(Parameter '...')" suffix.</summary>
    public static string Problem(ArgumentException exception) => exception.Message.Split(" (Parameter '", 2)[0];

    /// <summary>
    /// Validates the node's options: first the loopback rules of its addresses, with the CLI's options
    /// (<see cref="ClusterSession.UnresolvedRules"/>; a host name's once it resolves, before the node starts), then the
    /// rest as the library checks it, naming the CLI option a library parameter came from (<paramref name="sources"/>).
    /// The library sees loopback stand-ins for the addresses: they are the CLI's to check (the library's message would
    /// name its properties, and would call a name that does not resolve "not a loopback address"), with the library's
    /// rules, so <see cref="ClusterNodeOptions.Validate"/> refuses none of them when the node starts.
    /// </summary>
    /// <param name="node">The node's options.</param>
    /// <param name="command">"node" (a worker, which joins its --seed) or "--cluster" (a coordinator, its own seed).</param>
    /// <param name="sources">The CLI option each credential parameter came from.</param>
    private static ClusterNodeOptions Checked(ClusterNodeOptions node, string command, params (string Parameter, string Option)[] sources)
    {
        if (ClusterSession.UnresolvedRules(node, worker: command == "node") is { } rule)
        {
            throw new ArgumentException(rule, rule.StartsWith("--seed", StringComparison.Ordinal) ? "--seed" : "--listen");
        }

        try
        {
            (node with { ListenHost = "127.0.0.1", SeedNodes = [] }).Validate();
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
