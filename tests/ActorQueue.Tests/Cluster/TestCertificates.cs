using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>Certificates for test clusters: one CA for the whole test run, and node certificates it issues.</summary>
internal static class TestCertificates
{
    private static readonly Lazy<X509Certificate2> LazyAuthority = new(() => ClusterCertificates.CreateAuthority("actorqueue tests CA", TimeSpan.FromDays(1)));

    /// <summary>The test clusters' CA, with its private key.</summary>
    public static X509Certificate2 Authority => LazyAuthority.Value;

    /// <summary>
    /// A new node certificate from <paramref name="authority"/> (the test CA by default), loaded back from PFX bytes as
    /// a node loads its file, so the private key is the kind TLS uses in production.
    /// </summary>
    public static X509Certificate2 Node(string name = "node", X509Certificate2? authority = null)
    {
        using var issued = ClusterCertificates.IssueNode(authority ?? Authority, name, TimeSpan.FromDays(1));
        return X509CertificateLoader.LoadPkcs12(issued.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A self-signed certificate fit for TLS client and server use, issued by nobody the cluster trusts.</summary>
    public static X509Certificate2 SelfSigned(string name = "rogue")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The options of an authenticated member of the test clusters.</summary>
    public static ClusterNodeOptions MemberOptions(string name = "node") => new()
    {
        Certificate = Node(name),
        TrustedAuthorities = [X509CertificateLoader.LoadCertificate(Authority.RawData)],
    };
}
