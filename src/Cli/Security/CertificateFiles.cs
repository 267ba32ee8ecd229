using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Security;

/// <summary>
/// The files of a cluster's certificates: <c>ca.crt</c> (PEM, public), <c>ca.key</c> (PEM PKCS#8, the CA's private
/// key), <c>node.pfx</c> (PKCS#12, a node's certificate and private key) and <c>node.crt</c> (PEM, public). Private keys
/// are written owner-only (0600) and encrypted when their variable is set: <c>ca.key</c> with
/// <see cref="AuthorityPasswordVariable"/>, <c>node.pfx</c> with <see cref="PasswordVariable"/>, so that a node never
/// holds the CA's password. Every problem is
/// an <see cref="ArgumentException"/> with a one-line message naming the option and the file.
/// </summary>
internal static class CertificateFiles
{
    /// <summary>The environment variable with the password of private key files; unset for unencrypted files.</summary>
    public const string PasswordVariable = "ACTORQUEUE_CERT_PASSWORD";

    /// <summary>The environment variable with the password of the CA's <c>ca.key</c>; unset for an unencrypted key.</summary>
    public const string AuthorityPasswordVariable = "ACTORQUEUE_CA_PASSWORD";

    public const string AuthorityCertificate = "ca.crt";

    public const string AuthorityKey = "ca.key";

    public const string NodeBundle = "node.pfx";

    public const string NodeCertificate = "node.crt";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode Public = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The password for private key files, or <c>null</c> when <see cref="PasswordVariable"/> is unset or empty.</summary>
    public static string? Password => Environment.GetEnvironmentVariable(PasswordVariable) is { Length: > 0 } password ? password : null;

    /// <summary>The password of <c>ca.key</c>, or <c>null</c> when <see cref="AuthorityPasswordVariable"/> is unset or empty.</summary>
    public static string? AuthorityPassword => Environment.GetEnvironmentVariable(AuthorityPasswordVariable) is { Length: > 0 } password ? password : null;

    /// <summary>Reads a node's certificate with its private key from a PKCS#12 file.</summary>
    public static X509Certificate2 ReadNode(string option, string path)
    {
        var bytes = ReadAll(option, path);
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12(bytes, Password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException(
                $"{option} '{path}' is not a PKCS#12 (.pfx) file this password opens ({Said(PasswordVariable)}): {ex.Message}", option, ex);
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new ArgumentException($"{option} '{path}' holds no private key; a node needs its own key ('actorqueue cert node' writes one)", option);
        }

        var now = DateTime.Now;
        if (now < certificate.NotBefore || now > certificate.NotAfter)
        {
            // Here, with the option: ClusterNodeOptions.Validate says the same of its Certificate property.
            var (from, to, subject) = (certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime(), certificate.Subject);
            certificate.Dispose();
            throw new ArgumentException($"{option} '{path}' holds '{subject}', valid {from:u} to {to:u}, not now ('actorqueue cert node' issues a new one)", option);
        }

        return certificate;
    }

    /// <summary>
    /// What the password <paramref name="variable"/> is, for a message: not set, set but empty (which reads and writes
    /// the key unencrypted, as unset does: docs/SECURITY.md), or set.
    /// </summary>
    private static string Said(string variable) => Environment.GetEnvironmentVariable(variable) switch
    {
        null => $"{variable} is not set",
        "" => $"{variable} is empty, so no password",
        _ => $"{variable} is set",
    };

    /// <summary>Reads the CA certificates in a PEM file (several for a rotation: the old CA and the new).</summary>
    public static IReadOnlyList<X509Certificate2> ReadAuthorities(string option, string path)
    {
        var text = System.Text.Encoding.ASCII.GetString(ReadAll(option, path));
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPem(text);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException($"{option} '{path}' holds a damaged PEM certificate: {ex.Message}", option, ex);
        }

        if (authorities.Count == 0)
        {
            throw new ArgumentException($"{option} '{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)", option);
        }

        if (authorities.FirstOrDefault(certificate => !ClusterCertificates.IsAuthority(certificate)) is { } leaf)
        {
            throw new ArgumentException($"{option} '{path}' holds '{leaf.Subject}', which is not a CA certificate", option);
        }

        return [.. authorities];
    }

    /// <summary>Reads a CA's certificate and private key from <c>ca.crt</c> and <c>ca.key</c> in <paramref name="directory"/>.</summary>
    public static X509Certificate2 ReadAuthorityWithKey(string option, string directory)
    {
        var certificatePath = Path.Combine(directory, AuthorityCertificate);
        var keyPath = Path.Combine(directory, AuthorityKey);
        var certificateText = System.Text.Encoding.ASCII.GetString(ReadAll(option, certificatePath));
        var keyText = System.Text.Encoding.ASCII.GetString(ReadAll(option, keyPath));
        try
        {
            var authority = AuthorityPassword is { } password
                ? X509Certificate2.CreateFromEncryptedPem(certificateText, keyText, password)
                : X509Certificate2.CreateFromPem(certificateText, keyText);
            return ClusterCertificates.IsAuthority(authority)
                ? authority
                : throw new ArgumentException($"{option} '{certificatePath}' is not a CA certificate", option);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException(
                $"{option} '{keyPath}' is not the PEM private key of '{certificatePath}' that this password opens ({Said(AuthorityPasswordVariable)}): {ex.Message}", option, ex);
        }
    }

    /// <summary>Writes a CA's certificate (public) and private key (owner-only) into <paramref name="directory"/>.</summary>
    public static (string Certificate, string Key) WriteAuthority(string directory, X509Certificate2 authority)
    {
        using var key = authority.GetECDsaPrivateKey() ?? throw new InvalidOperationException("the CA has no ECDSA private key");
        var keyPem = AuthorityPassword is { } password
            ? key.ExportEncryptedPkcs8PrivateKeyPem(password, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 600_000))
            : key.ExportPkcs8PrivateKeyPem();
        var certificatePath = Path.Combine(directory, AuthorityCertificate);
        var keyPath = Path.Combine(directory, AuthorityKey);
        Refuse(certificatePath);
        Refuse(keyPath);
        WriteNew(keyPath, System.Text.Encoding.ASCII.GetBytes(keyPem + "\n"), OwnerOnly);
        WriteNew(certificatePath, System.Text.Encoding.ASCII.GetBytes(authority.ExportCertificatePem() + "\n"), Public);
        return (certificatePath, keyPath);
    }

    /// <summary>
    /// Writes a node's <c>node.pfx</c> (certificate and private key, owner-only), <c>node.crt</c> and a copy of its
    /// CA's <c>ca.crt</c> into <paramref name="directory"/>, the layout <c>--cert-dir</c> reads.
    /// </summary>
    public static string WriteNode(string directory, X509Certificate2 node, X509Certificate2 authority)
    {
        var bundlePath = Path.Combine(directory, NodeBundle);
        var certificatePath = Path.Combine(directory, NodeCertificate);
        var authorityPath = Path.Combine(directory, AuthorityCertificate);
        var authorityPem = System.Text.Encoding.ASCII.GetBytes(authority.ExportCertificatePem() + "\n");
        if (File.Exists(Path.Combine(directory, AuthorityKey)))
        {
            // The directory is made to be copied to a node (its --cert-dir): the CA's key would go with it.
            throw new ArgumentException($"--out '{directory}' holds the CA's private key {AuthorityKey}, and a node's directory goes to the node: give another DIR", "--out");
        }

        Refuse(bundlePath);
        Refuse(certificatePath);
        var sameAuthority = File.Exists(authorityPath) && File.ReadAllBytes(authorityPath).AsSpan().SequenceEqual(authorityPem);
        if (!sameAuthority)
        {
            Refuse(authorityPath);
        }

        WriteNew(bundlePath, node.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, Password), OwnerOnly);
        WriteNew(certificatePath, System.Text.Encoding.ASCII.GetBytes(node.ExportCertificatePem() + "\n"), Public);
        if (!sameAuthority)
        {
            WriteNew(authorityPath, authorityPem, Public);
        }

        return bundlePath;
    }

    /// <summary>Creates <paramref name="directory"/> (owner-only on Unix) unless it exists.</summary>
    public static void CreateDirectory(string option, string directory)
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, OwnerOnly | UnixFileMode.UserExecute);
            }
        }
        catch (DirectoryNotFoundException ex)
        {
            // A part of the path is a file: .NET said "Could not find a part of the path '/the/full/path'."
            throw new ArgumentException($"{option} '{directory}': cannot create the directory: {Commands.Usage.MissingDirectory(directory)}", option, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} '{directory}': cannot create the directory ({ex.Message})", option, ex);
        }
    }

    private static byte[] ReadAll(string option, string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (FileNotFoundException ex)
        {
            throw new ArgumentException($"{option} '{path}': no such file", option, ex);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new ArgumentException($"{option} '{path}': {Commands.Usage.MissingDirectory(path)}", option, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} '{path}': cannot read it ({ex.Message})", option, ex);
        }
    }

    /// <summary>Never replaces a key or a certificate: an overwritten CA would silently lock every node out.</summary>
    private static void Refuse(string path)
    {
        if (File.Exists(path))
        {
            throw new ArgumentException($"--out: '{path}' already exists; remove it first to replace it", "--out");
        }
    }

    private static void WriteNew(string path, byte[] content, UnixFileMode mode)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode; // set when the file is created, so the key is never readable by others
        }

        try
        {
            using var file = new FileStream(path, options);
            file.Write(content);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--out: cannot write '{path}' ({ex.Message})", "--out", ex);
        }
    }
}
