using System.Globalization;
using ActorQueue.Cli.Commands;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Security;

/// <summary>
/// <c>actorqueue cert ca --out DIR</c> creates a cluster's private CA; <c>actorqueue cert node --ca DIR --name NAME
/// --out DIR</c> issues a node certificate from it, into the directory <c>run --cluster --cert-dir</c> and
/// <c>node --cert-dir</c> read.
/// </summary>
internal static class CertCommand
{
    private const int DefaultAuthorityDays = 3650;

    private const int DefaultNodeDays = 365;

    /// <summary>Runs <c>cert ca</c> or <c>cert node</c> (<paramref name="kind"/>) with the options given (<c>--out</c> → value).</summary>
    public static int Run(string kind, Dictionary<string, string> values, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            return kind == "ca" ? CreateAuthority(values, stdout) : IssueNode(values, stdout);
        }
        catch (ArgumentException ex)
        {
            return Usage.Fail(stderr, ClusterCertificateOptions.Problem(ex));
        }
    }

    private static int CreateAuthority(Dictionary<string, string> values, TextWriter stdout)
    {
        var output = Required(values, "--out", "the directory for ca.crt and ca.key");
        var days = Days(values, DefaultAuthorityDays);
        // A CA's name shows in every refusal a peer logs, so two clusters' CAs should not share one.
        var name = values.ContainsKey("--name")
            ? Required(values, "--name", "the CA's name")
            : $"actorqueue cluster CA {Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
        CertificateFiles.CreateDirectory("--out", output);
        using var authority = ClusterCertificates.CreateAuthority(name, TimeSpan.FromDays(days));
        var (certificate, key) = CertificateFiles.WriteAuthority(output, authority);
        stdout.WriteLine($"actorqueue: cluster CA '{name}' valid until {authority.NotAfter:yyyy-MM-dd}: {certificate} (public), {key} (private, mode 600{Encrypted(CertificateFiles.AuthorityPassword, CertificateFiles.AuthorityPasswordVariable)})");
        stdout.WriteLine($"actorqueue: keep {key} off the nodes; issue node certificates with: actorqueue cert node --ca {output} --name NAME --out DIR");
        return 0;
    }

    private static int IssueNode(Dictionary<string, string> values, TextWriter stdout)
    {
        var output = Required(values, "--out", "the directory for node.pfx, node.crt and ca.crt");
        var name = Required(values, "--name", "the node's name");
        var authorityDirectory = Required(values, "--ca", "the directory of 'actorqueue cert ca'");
        var days = Days(values, DefaultNodeDays);
        using var authority = CertificateFiles.ReadAuthorityWithKey("--ca", authorityDirectory);
        CertificateFiles.CreateDirectory("--out", output);
        using var node = ClusterCertificates.IssueNode(authority, name, TimeSpan.FromDays(days));
        var bundle = CertificateFiles.WriteNode(output, node, authority);
        stdout.WriteLine($"actorqueue: node certificate '{name}' valid until {node.NotAfter:yyyy-MM-dd}: {bundle} (private, mode 600{Encrypted(CertificateFiles.Password, CertificateFiles.PasswordVariable)}) and ca.crt in {output}");
        stdout.WriteLine($"actorqueue: use it with: actorqueue node --seed HOST:PORT --cert-dir {output}   (or: actorqueue run --cluster ... --cert-dir {output})");
        return 0;
    }

    private static string Encrypted(string? password, string variable) => password is null ? $", not encrypted: {variable} is not set" : $", encrypted with {variable}";

    private static string Required(Dictionary<string, string> values, string option, string what) =>
        values.TryGetValue(option, out var value) && value != ""
            ? value
            : throw new ArgumentException($"{option} is required and not empty: {what}", option);

    private static int Days(Dictionary<string, string> values, int fallback)
    {
        if (!values.TryGetValue("--days", out var text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var days) && days is >= 1 and <= 36500
            ? days
            : throw new ArgumentException($"--days takes a whole number of days in 1..36500, got '{text}'", "--days");
    }
}
