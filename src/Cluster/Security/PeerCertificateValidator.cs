using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace ActorQueue.Cluster;

/// <summary>
/// Decides whether a peer's TLS certificate makes it a cluster member: it must be one of the pinned certificates, or
/// chain to one of the trusted CAs, be valid today, and allow server and client authentication. Only the CAs and pins
/// the node was given count; the machine's trust store does not, so a certificate from any public CA is refused.
/// Both ends of every connection run it: the accepting node on the client's certificate, the connecting node on the
/// server's.
/// </summary>
internal sealed class PeerCertificateValidator
{
    /// <summary>The CAs whose node certificates are members.</summary>
    private readonly X509Certificate2Collection _authorities;

    /// <summary>SHA-256 of each pinned certificate's DER encoding (upper-case hex).</summary>
    private readonly HashSet<string> _pinned;

    public PeerCertificateValidator(IEnumerable<X509Certificate2> authorities, IEnumerable<X509Certificate2> pinned)
    {
        _authorities = [.. authorities];
        _pinned = new HashSet<string>(pinned.Select(Fingerprint), StringComparer.Ordinal);
    }

    /// <summary>The callback for Akka's DotNetty transport (<see cref="DotNettySslSetup.CustomValidator"/>).</summary>
    /// <remarks>
    /// The transport's own verdict (<c>errors</c>) is about the machine's trust store and the host name, neither of which
    /// decides membership, so only a missing certificate counts from it.
    /// </remarks>
    public CertificateValidationCallback Callback => (certificate, chain, peer, errors, log) =>
    {
        var refusal = certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)
            ? "it presented no certificate"
            : Refusal(certificate, chain);
        if (refusal is not null)
        {
            log.Warning("ActorQueue refused a connection with cluster peer {0}: {1}", peer, refusal);
        }

        return refusal is null;
    };

    /// <summary>Why <paramref name="certificate"/> does not make its holder a member; <c>null</c> when it does.</summary>
    /// <param name="certificate">The peer's certificate (the TLS handshake proved it holds the private key).</param>
    /// <param name="presented">The chain TLS built, whose extra store holds the intermediates the peer sent; may be <c>null</c>.</param>
    public string? Refusal(X509Certificate2 certificate, X509Chain? presented)
    {
        var fingerprint = Fingerprint(certificate);
        var now = DateTime.Now;
        if (_pinned.Contains(fingerprint))
        {
            return certificate.NotBefore <= now && now <= certificate.NotAfter
                ? null
                : $"the pinned certificate '{certificate.Subject}' is not valid now (valid {certificate.NotBefore:u} to {certificate.NotAfter:u})";
        }

        if (_authorities.Count == 0)
        {
            return $"the certificate '{certificate.Subject}' (SHA-256 {fingerprint}) is not pinned";
        }

        if (ClusterCertificates.IsAuthority(certificate))
        {
            return $"the certificate '{certificate.Subject}' is a CA certificate, not a node certificate";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(ClusterCertificates.ServerAuthentication);
        chain.ChainPolicy.ApplicationPolicy.Add(ClusterCertificates.ClientAuthentication);
        if (presented is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
        }

        try
        {
            return chain.Build(certificate)
                ? null
                : $"the certificate '{certificate.Subject}' issued by '{certificate.Issuer}' is not a valid node certificate of a trusted cluster CA ({string.Join("; ", chain.ChainStatus.Select(status => status.StatusInformation.Trim()).Distinct())})";
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }

    private static string Fingerprint(X509Certificate2 certificate) =>
        certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
}
