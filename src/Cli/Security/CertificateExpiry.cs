using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cli.Commands;

namespace ActorQueue.Cli.Security;

/// <summary>
/// Watches the certificate a cluster node runs with (a worker's or the coordinator's) so that it never runs past its
/// end. At start-up it warns of a certificate, or a CA of <c>ca.crt</c>, that ends within <see cref="WarnWithin"/>;
/// while the node runs it stops the node in order before the end (<see cref="StopAt"/>): a worker leaves the cluster
/// (its running jobs go back to the queue, as on SIGTERM) and a coordinator stops its run as interrupted (no new job
/// starts, running jobs finish, the ones not started are counted and <c>--resume</c> runs them; at the end itself, what
/// still runs is abandoned as by a second Ctrl-C: workers that left with it hand back jobs no node could join to run),
/// either exiting with <see cref="ExitCode"/>. Left to run, an expired node is refused by every TLS handshake it takes part in, and Akka.NET
/// 1.5's transport shuts down the actor system of a node whose outbound handshake fails: the peer that connects, not
/// the expired node (docs/SECURITY.md, "Rotating certificates").
/// </summary>
internal sealed class CertificateExpiry : IDisposable
{
    /// <summary>
    /// The exit status of a node or run stopped because its certificate was about to end: sysexits' EX_CONFIG (78),
    /// "something was found in an unconfigured or misconfigured state". A supervisor that restarts the node gets a usage
    /// error (255) until a new certificate is in place.
    /// </summary>
    public const int ExitCode = 78;

    /// <summary>
    /// How soon an end is warned of at start-up: 30 days, a month to issue and roll out a new certificate (they are
    /// issued for 365 days), and longer than most runs, so a run or node started in the warned window is likely to be
    /// stopped by <see cref="StopAt"/> before it is done.
    /// </summary>
    public static readonly TimeSpan WarnWithin = TimeSpan.FromDays(30);

    /// <summary>
    /// How long before its certificate's end a node stops: 5 minutes, the clock difference a new certificate already
    /// allows its peers (it starts 5 minutes early: <see cref="ActorQueue.Cluster.ClusterCertificates"/>), so a peer
    /// whose clock is up to that far ahead still accepts the node until it has left; a leave takes seconds (at most 10 s,
    /// <see cref="ClusterSession.LeaveBound"/>).
    /// </summary>
    public static readonly TimeSpan Margin = TimeSpan.FromMinutes(5);

    /// <summary>The longest single wait: a timer takes at most about 49 days, and a long wait re-reads the clock (a suspended machine).</summary>
    private static readonly TimeSpan Step = TimeSpan.FromDays(1);

    private readonly CancellationTokenSource _stop = new();

    private int _fired;

    private int _disposed;

    private CertificateExpiry(Task watching) => Watching = watching;

    /// <summary>Completes when the watch has fired or was disposed.</summary>
    internal Task Watching { get; private set; }

    /// <summary>Whether the watch stopped the node (it did not if the node was already stopping).</summary>
    public bool Fired => Volatile.Read(ref _fired) != 0;

    /// <summary>
    /// When a node whose certificate ends at <paramref name="end"/> stops, started at <paramref name="start"/>:
    /// <see cref="Margin"/> before the end, or halfway to it when less than twice the margin is left (a certificate
    /// about to end still lets the node work, and still lets it leave before the end).
    /// </summary>
    public static DateTimeOffset StopAt(DateTimeOffset end, DateTimeOffset start)
    {
        var left = end - start;
        return end - (left < 2 * Margin ? left / 2 : Margin);
    }

    /// <summary>
    /// The start-up warnings of <paramref name="certificate"/> (read from <paramref name="certificateFile"/>) and each of
    /// <paramref name="authorities"/> (from <paramref name="authorityFile"/>) that ends within <see cref="WarnWithin"/> of
    /// <paramref name="now"/>, one line each, naming the file, the subject and the date.
    /// </summary>
    public static IEnumerable<string> Warnings(X509Certificate2 certificate, string certificateFile,
        IEnumerable<X509Certificate2> authorities, string authorityFile, DateTimeOffset now, string stopping)
    {
        if (End(certificate) - now <= WarnWithin)
        {
            yield return $"WARNING: {certificateFile} holds '{certificate.Subject}', which expires {Date(End(certificate))} ({In(End(certificate) - now)}): issue a new one ('actorqueue cert node'); {stopping} {Date(StopAt(End(certificate), now))}";
        }

        foreach (var authority in authorities.Where(authority => End(authority) - now <= WarnWithin))
        {
            yield return $"WARNING: {authorityFile} holds the CA '{authority.Subject}', which expires {Date(End(authority))} ({In(End(authority) - now)}): no certificate it issued is accepted after that; rotate the CA (docs/SECURITY.md, \"Rotating certificates\")";
        }
    }

    /// <summary>
    /// The end of what this node presents: its certificate's <c>NotAfter</c>, or its issuing CA's in
    /// <paramref name="authorities"/> if that ends first (peers refuse a chain whose CA has expired).
    /// </summary>
    public static DateTimeOffset Effective(X509Certificate2 certificate, IEnumerable<X509Certificate2> authorities) =>
        authorities.Where(authority => authority.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData))
            .Select(End).Append(End(certificate)).Min();

    /// <summary>
    /// Starts the watch: at <see cref="StopAt"/>(<paramref name="end"/>, now), unless disposed first, it stops the node
    /// with <paramref name="stop"/> and the line that says why, if <paramref name="stopping"/> says the node is not
    /// already stopping (<see cref="Fired"/> is set before the stop, so the exit that the stop brings sees it).
    /// </summary>
    /// <param name="end">When the certificate ends.</param>
    /// <param name="what">The certificate, as the line names it.</param>
    /// <param name="clock">The clock.</param>
    /// <param name="stopping">Whether the node is already stopping.</param>
    /// <param name="stop">Stops the node in order, with the line that says why.</param>
    /// <param name="expired">
    /// If given, called at <paramref name="end"/> once the watch has stopped the node (a coordinator abandons what is
    /// still running then: no node could join it any more to run a job handed back).
    /// </param>
    public static CertificateExpiry Start(DateTimeOffset end, string what, TimeProvider clock, Func<bool> stopping, Action<string> stop,
        Action<string>? expired = null)
    {
        var expiry = new CertificateExpiry(Task.CompletedTask);
        var at = StopAt(end, clock.GetUtcNow());
        expiry.Watching = expiry.WatchAsync(at, end, what, clock, stopping, stop, expired);
        return expiry;
    }

    /// <summary>
    /// The command's exit status: <see cref="ExitCode"/> instead of an interrupted <paramref name="status"/> (130) once the watch
    /// stopped the node; any other status as it is.
    /// </summary>
    public int Exit(int status) => Fired && status == Usage.InterruptedExitCode ? ExitCode : status;

    private async Task WatchAsync(DateTimeOffset at, DateTimeOffset end, string what, TimeProvider clock, Func<bool> stopping, Action<string> stop,
        Action<string>? expired)
    {
        if (!await UntilAsync(at, clock).ConfigureAwait(false) || stopping())
        {
            return;
        }

        Volatile.Write(ref _fired, 1);
        stop($"{what} expires {Date(end)} ({In(end - clock.GetUtcNow())}); renew it ('actorqueue cert node') and restart");
        if (expired is not null && await UntilAsync(end, clock).ConfigureAwait(false))
        {
            expired($"{what} expired at {Date(end)}, and no node can join with it to run what is still running");
        }
    }

    /// <summary>Waits until <paramref name="time"/>; <c>false</c> when disposed first.</summary>
    private async Task<bool> UntilAsync(DateTimeOffset time, TimeProvider clock)
    {
        try
        {
            for (var left = time - clock.GetUtcNow(); left > TimeSpan.Zero; left = time - clock.GetUtcNow())
            {
                await Task.Delay(left < Step ? left : Step, clock, _stop.Token).ConfigureAwait(false);
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Starts the watch of a CLI node: its start-up warnings go to <paramref name="stderr"/> now.</summary>
    /// <param name="certificates">The node's certificate options, for the files' names.</param>
    /// <param name="node">The node's options, with the certificate and the CAs read.</param>
    /// <param name="coordinator">Whether the node is a run's coordinator (it stops its run) or a worker (it leaves).</param>
    /// <param name="stderr">Where the warnings go.</param>
    /// <param name="interrupts">Stopped (first stage) with the line that names the certificate and its end.</param>
    /// <param name="clock">The clock; the system's by default.</param>
    /// <returns>The watch; <c>null</c> for a node without a certificate (<c>--insecure-loopback</c>).</returns>
    public static CertificateExpiry? Watch(ClusterCertificateOptions certificates, ActorQueue.Cluster.ClusterNodeOptions node, bool coordinator,
        TextWriter stderr, Interrupts interrupts, TimeProvider? clock = null)
    {
        if (node.Certificate is not { } certificate || certificates.Files is not var (certificateFile, authorityFile))
        {
            return null;
        }

        clock ??= TimeProvider.System;
        var prefix = coordinator ? "actorqueue: " : "actorqueue node: ";
        var stopping = coordinator ? "the run stops (as interrupted) at" : "the node leaves the cluster at";
        foreach (var line in Warnings(certificate, certificateFile, node.TrustedAuthorities, authorityFile, clock.GetUtcNow(), stopping))
        {
            stderr.WriteLine(prefix + line);
        }

        var what = $"the {(coordinator ? "coordinator's" : "node's")} certificate {certificateFile} ('{certificate.Subject}')";
        // A node already stopping (a signal) goes on as it began, with its own status.
        return Start(Effective(certificate, node.TrustedAuthorities), what, clock, () => interrupts.StopInput.IsCancellationRequested, interrupts.Stop,
            coordinator ? interrupts.KillAll : null);
    }

    /// <summary>Stops the watch; it no longer fires.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }

    private static DateTimeOffset End(X509Certificate2 certificate) => new(certificate.NotAfter.ToUniversalTime());

    private static string Date(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string In(TimeSpan left) => left switch
    {
        { TotalDays: >= 2 } => $"in {(int)left.TotalDays} days",
        { TotalHours: >= 2 } => $"in {(int)left.TotalHours} hours",
        { TotalMinutes: >= 2 } => $"in {(int)left.TotalMinutes} min",
        { TotalSeconds: > 0 } => $"in {(int)Math.Ceiling(left.TotalSeconds)} s",
        _ => "already",
    };
}
