using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ActorQueue.Cluster;

/// <summary>
/// Creates a private certificate authority for one cluster and the node certificates it issues (ECDSA P-256,
/// SHA-256). A node's certificate is its membership: any peer holding a certificate issued by a CA the node trusts
/// (<see cref="ClusterNodeOptions.TrustedAuthorities"/>) may join and do everything a member can.
/// </summary>
public static class ClusterCertificates
{
    /// <summary>Server and client authentication: every node accepts connections and makes them.</summary>
    internal static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    /// <inheritdoc cref="ServerAuthentication"/>
    internal static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>How far back a new certificate's validity starts, so a peer whose clock is a little behind accepts it.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>Creates a self-signed CA certificate, with its private key, that may only issue node certificates.</summary>
    /// <param name="name">The CA's common name, e.g. the cluster's name.</param>
    /// <param name="validity">How long the CA is valid; node certificates never outlive it.</param>
    /// <returns>The CA certificate with its private key; keep the key away from the nodes.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="validity"/> is not positive.</exception>
    public static X509Certificate2 CreateAuthority(string name, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(validity, TimeSpan.Zero);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Subject(name), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now - ClockSkew, now + validity);
    }

    /// <summary>Issues a node certificate, with its private key, signed by <paramref name="authority"/>.</summary>
    /// <param name="authority">A CA from <see cref="CreateAuthority"/>, with its private key.</param>
    /// <param name="name">The node's common name (and DNS name when it is one); for people reading logs, not checked by peers.</param>
    /// <param name="validity">How long the certificate is valid; cut to the CA's own end.</param>
    /// <returns>The node certificate with its private key.</returns>
    /// <exception cref="ArgumentException"><paramref name="authority"/> is not a CA with its private key, or <paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="validity"/> is not positive.</exception>
    public static X509Certificate2 IssueNode(X509Certificate2 authority, string name, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(validity, TimeSpan.Zero);
        if (!IsAuthority(authority) || !authority.HasPrivateKey)
        {
            throw new ArgumentException($"authority must be a CA certificate with its private key, got '{authority.Subject}' (CA: {IsAuthority(authority)}, private key: {authority.HasPrivateKey})", nameof(authority));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Subject(name), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuthentication, ClientAuthentication], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (Uri.CheckHostName(name) == UriHostNameType.Dns)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(name);
            request.CertificateExtensions.Add(names.Build());
        }

        var now = DateTimeOffset.UtcNow;
        var notAfter = now + validity < authority.NotAfter ? now + validity : new DateTimeOffset(authority.NotAfter.ToUniversalTime());
        var notBefore = now - ClockSkew > authority.NotBefore ? now - ClockSkew : new DateTimeOffset(authority.NotBefore.ToUniversalTime());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a serial number is a positive integer
        using var issued = request.Create(authority, notBefore, notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Whether <paramref name="certificate"/> is marked as a CA (basic constraints).</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns><c>true</c> for a CA certificate.</returns>
    public static bool IsAuthority(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(constraints => constraints.CertificateAuthority);
    }

    private static X500DistinguishedName Subject(string commonName)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(commonName);
        return builder.Build();
    }
}
