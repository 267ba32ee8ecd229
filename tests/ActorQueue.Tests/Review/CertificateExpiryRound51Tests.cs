using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cli.Commands;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The watch of a CLI node's certificate (<see cref="CertificateExpiry"/>) on a fake clock: when it stops the node,
/// what it says at start-up, and the exit status it gives.
/// </summary>
/// <remarks>
/// Failed before: did not compile (no <c>CertificateExpiry</c>: nothing watched a certificate ending while its node ran;
/// the process test <see cref="CertificateExpiryProcessRound51Tests"/> shows what that did).
/// </remarks>
public sealed class CertificateExpiryRound51Tests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly X509Certificate2 _authority = ClusterCertificates.CreateAuthority("expiry test CA", TimeSpan.FromDays(3650));

    public void Dispose() => _authority.Dispose();

    [Fact]
    public void A_node_stops_five_minutes_before_the_end_or_halfway_to_an_end_closer_than_ten_minutes()
    {
        var start = new DateTimeOffset(2026, 12, 7, 20, 0, 0, TimeSpan.Zero);
        Assert.Equal(start.AddDays(365) - TimeSpan.FromMinutes(5), CertificateExpiry.StopAt(start.AddDays(365), start));
        Assert.Equal(start.AddMinutes(5), CertificateExpiry.StopAt(start.AddMinutes(10), start));
        Assert.Equal(start.AddSeconds(30), CertificateExpiry.StopAt(start.AddSeconds(60), start));
    }

    /// <summary>A year's wait is longer than one timer takes (about 49 days): the watch waits in steps and still stops on time.</summary>
    /// <remarks>
    /// Each move of the clock waits until the watch has set its next timer (<see cref="ArmedClock"/>): a move made while
    /// a pool thread was still setting it could be lost by the fake clock (its timers are fired by one caller at a time,
    /// and a second caller returns at once), and the last timer then never fired (failed twice in CI with a timeout).
    /// </remarks>
    [Fact]
    public async Task The_watch_of_a_year_long_certificate_fires_at_its_stop_time_and_not_a_second_before()
    {
        var clock = new ArmedClock(new DateTimeOffset(2026, 12, 7, 20, 0, 0, TimeSpan.Zero));
        var end = clock.GetUtcNow().AddDays(365);
        var said = new List<string>();
        CertificateExpiry? watch = null;
        var firedBeforeStop = false;
        using var expiry = watch = CertificateExpiry.Start(end, "the node's certificate X", clock, () => false, why =>
        {
            firedBeforeStop = watch!.Fired; // set before the stop: the exit the stop brings may come first
            said.Add(why);
        });

        var at = end - CertificateExpiry.Margin;
        while (clock.GetUtcNow() < at - TimeSpan.FromDays(1))
        {
            await clock.AdvanceArmedAsync(TimeSpan.FromHours(20));
        }

        await clock.AdvanceArmedAsync(at - TimeSpan.FromSeconds(1) - clock.GetUtcNow());
        Assert.False(expiry.Watching.IsCompleted, expiry.Watching.Exception?.ToString());
        Assert.Empty(said);

        await clock.AdvanceArmedAsync(TimeSpan.FromSeconds(1));
        await expiry.Watching.WaitAsync(Bound);
        Assert.Equal("the node's certificate X expires 2027-12-07 20:00:00Z (in 5 min); renew it ('actorqueue cert node') and restart", Assert.Single(said));
        Assert.True(firedBeforeStop);
        Assert.True(expiry.Fired);
        Assert.Equal(CertificateExpiry.ExitCode, expiry.Exit(Usage.InterruptedExitCode));
        Assert.Equal(1, expiry.Exit(1)); // a node that stopped otherwise meanwhile keeps its own status
    }

    [Fact]
    public async Task A_disposed_watch_never_fires()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 20, 0, 0, TimeSpan.Zero));
        var said = 0;
        var expiry = CertificateExpiry.Start(clock.GetUtcNow().AddMinutes(30), "X", clock, () => false, _ => said++);
        expiry.Dispose();
        expiry.Dispose();
        clock.Advance(TimeSpan.FromHours(1));
        await expiry.Watching.WaitAsync(Bound);
        Assert.Equal(0, said);
        Assert.False(expiry.Fired);
        Assert.Equal(Usage.InterruptedExitCode, expiry.Exit(Usage.InterruptedExitCode));
    }

    /// <summary>A worker's watch stops it as SIGTERM does, with its line, and its exit is 78; a signal first keeps 130.</summary>
    [Fact]
    public async Task A_worker_is_stopped_through_its_interrupts_with_one_line_naming_the_file_and_the_end_unless_a_signal_came_first()
    {
        foreach (var signalFirst in new[] { false, true })
        {
            using var watched = Watch("worker-1", TimeSpan.FromDays(10), new ClusterCertificateOptions { CertDir = "/certs" }, coordinator: false,
                new Interrupts { FirstStage = "the node stops" });
            var (clock, interrupts, stderr, expiry, end) = (watched.Clock, watched.Interrupts, watched.Stderr, watched.Expiry, watched.End);
            Assert.Equal(
                $"actorqueue node: WARNING: --cert-dir '/certs/node.pfx' holds 'CN=worker-1', which expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z (in 9 days): issue a new one ('actorqueue cert node'); the node leaves the cluster at {(end - CertificateExpiry.Margin).UtcDateTime:yyyy-MM-dd HH:mm:ss}Z{Environment.NewLine}",
                stderr.ToString());
            if (signalFirst)
            {
                interrupts.Stop("terminated");
            }

            await clock.AdvanceArmedAsync(end - CertificateExpiry.Margin - clock.GetUtcNow());
            await expiry.Watching.WaitAsync(Bound);
            Assert.True(interrupts.StopInput.IsCancellationRequested);
            var stop = stderr.ToString().Split(Environment.NewLine)[^2];
            Assert.Equal(signalFirst
                ? "actorqueue: terminated: the node stops"
                : $"actorqueue: the node's certificate --cert-dir '/certs/node.pfx' ('CN=worker-1') expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z (in 5 min); renew it ('actorqueue cert node') and restart: the node stops", stop);
            Assert.Equal(signalFirst ? Usage.InterruptedExitCode : CertificateExpiry.ExitCode, expiry.Exit(Usage.InterruptedExitCode));
        }
    }

    /// <summary>
    /// A coordinator's watch stops its run at the stop time and, if the run still runs at the certificate's end (its
    /// workers left with their certificates and handed back jobs no node can join to run), abandons what is running.
    /// </summary>
    /// <remarks>
    /// Failed before (measured: coordinator and workers with certificates issued together): the workers left, the run
    /// stopped, and it then waited for ever with "4 running" that no node would run.
    /// </remarks>
    [Fact]
    public async Task A_coordinator_stops_its_run_at_the_stop_time_and_abandons_what_still_runs_at_the_end()
    {
        using var watched = Watch("coordinator", TimeSpan.FromMinutes(60), new ClusterCertificateOptions { Cert = "c.pfx", Ca = "ca.crt" }, coordinator: true,
            new Interrupts { RerunsKilled = "--resume" });
        var (clock, interrupts, stderr, expiry, end) = (watched.Clock, watched.Interrupts, watched.Stderr, watched.Expiry, watched.End);
        Assert.StartsWith("actorqueue: WARNING: --cert 'c.pfx' holds 'CN=coordinator', which expires ", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("the run stops (as interrupted) at", stderr.ToString(), StringComparison.Ordinal);

        await clock.AdvanceArmedAsync(end - CertificateExpiry.Margin - clock.GetUtcNow());
        await Poll.UntilAsync(() => interrupts.StopInput.IsCancellationRequested, Bound, "the run stopped");
        Assert.False(interrupts.Kill.IsCancellationRequested);
        Assert.EndsWith("and restart: no new jobs start; running jobs finish (Ctrl-C kills them)" + Environment.NewLine, stderr.ToString(), StringComparison.Ordinal);

        await clock.AdvanceArmedAsync(CertificateExpiry.Margin - TimeSpan.FromSeconds(1));
        Assert.False(expiry.Watching.IsCompleted);
        await clock.AdvanceArmedAsync(TimeSpan.FromSeconds(1));
        await expiry.Watching.WaitAsync(Bound);
        Assert.True(interrupts.Kill.IsCancellationRequested);
        Assert.EndsWith(
            $"actorqueue: the coordinator's certificate --cert 'c.pfx' ('CN=coordinator') expired at {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, and no node can join with it to run what is still running: no new jobs start; killing running jobs (not logged, --resume runs them){Environment.NewLine}",
            stderr.ToString(), StringComparison.Ordinal);
        Assert.Equal(CertificateExpiry.ExitCode, expiry.Exit(Usage.InterruptedExitCode));
    }

    [Fact]
    public void Start_up_warns_of_a_certificate_or_a_CA_ending_within_30_days_and_of_nothing_later()
    {
        var now = DateTimeOffset.UtcNow;
        using var authority = ClusterCertificates.CreateAuthority("ending CA", TimeSpan.FromDays(29));
        using var ending = ClusterCertificates.IssueNode(authority, "ending", TimeSpan.FromDays(365));
        using var lasting = ClusterCertificates.IssueNode(_authority, "lasting", TimeSpan.FromDays(31));

        Assert.Empty(CertificateExpiry.Warnings(lasting, "--cert 'n.pfx'", [_authority], "--ca 'ca.crt'", now, "stops at"));
        var warnings = CertificateExpiry.Warnings(ending, "--cert 'n.pfx'", [_authority, authority], "--ca 'ca.crt'", now, "stops at").ToList();
        Assert.Equal(2, warnings.Count);
        Assert.StartsWith("WARNING: --cert 'n.pfx' holds 'CN=ending', which expires ", warnings[0], StringComparison.Ordinal);
        Assert.StartsWith("WARNING: --ca 'ca.crt' holds the CA 'CN=ending CA', which expires ", warnings[1], StringComparison.Ordinal);
        Assert.Contains("(in 28 days)", warnings[1], StringComparison.Ordinal);

        // The node presents a chain: it ends with its CA, if that ends first.
        Assert.Equal(new DateTimeOffset(authority.NotAfter.ToUniversalTime()), CertificateExpiry.Effective(ending, [_authority, authority]));
        Assert.Equal(new DateTimeOffset(lasting.NotAfter.ToUniversalTime()), CertificateExpiry.Effective(lasting, [_authority, authority]));
    }

    /// <summary>A CLI node's watch on a fake clock, of a new certificate of <paramref name="name"/>, valid for <paramref name="validity"/>.</summary>
    private Watched Watch(string name, TimeSpan validity, ClusterCertificateOptions files, bool coordinator, Interrupts interrupts)
    {
        var clock = new ArmedClock(DateTimeOffset.UtcNow);
        var certificate = ClusterCertificates.IssueNode(_authority, name, validity);
        var stderr = new StringWriter();
        interrupts.Errors = stderr;
        var node = new ClusterNodeOptions { Certificate = certificate, TrustedAuthorities = [_authority] };
        var expiry = CertificateExpiry.Watch(files, node, coordinator, stderr, interrupts, clock)!;
        return new Watched(clock, certificate, interrupts, stderr, expiry, new DateTimeOffset(certificate.NotAfter.ToUniversalTime()));
    }

    private sealed record Watched(ArmedClock Clock, X509Certificate2 Certificate, Interrupts Interrupts, StringWriter Stderr,
        CertificateExpiry Expiry, DateTimeOffset End) : IDisposable
    {
        public void Dispose()
        {
            Expiry.Dispose();
            Interrupts.Dispose();
            Certificate.Dispose();
        }
    }

    /// <summary>
    /// A fake clock that knows whether a timer is set and not yet fired, so a test moves it only once the watch waits
    /// on it. A timer fired by a move on the test's thread (which has xunit's synchronization context) resumes the watch
    /// on a pool thread, which sets the next timer beside the test's next move; <see cref="FakeTimeProvider"/> fires due
    /// timers on one caller at a time, and a move made while that thread is inside it returns without firing: the timer
    /// it made due was never fired.
    /// </summary>
    private sealed class ArmedClock(DateTimeOffset start) : TimeProvider
    {
        private readonly FakeTimeProvider _fake = new(start);

        /// <summary>Timers set and not yet fired.</summary>
        private int _armed;

        /// <inheritdoc />
        public override DateTimeOffset GetUtcNow() => _fake.GetUtcNow();

        /// <inheritdoc />
        public override long GetTimestamp() => _fake.GetTimestamp();

        /// <inheritdoc />
        public override long TimestampFrequency => _fake.TimestampFrequency;

        /// <inheritdoc />
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Assert.Equal(Timeout.InfiniteTimeSpan, period); // the watch sets one-shot timers only
            var timer = _fake.CreateTimer(s =>
            {
                Interlocked.Decrement(ref _armed);
                callback(s);
            }, state, dueTime, period);
            Interlocked.Increment(ref _armed); // counted once its setter has left the fake clock: a move now is not lost
            return timer;
        }

        /// <summary>Moves the clock by <paramref name="by"/> once a timer is set (and its setter has left the fake clock).</summary>
        public async Task AdvanceArmedAsync(TimeSpan by)
        {
            await Poll.UntilAsync(() => Volatile.Read(ref _armed) > 0, Bound, "the watch set its timer");
            _fake.Advance(by);
        }
    }
}
