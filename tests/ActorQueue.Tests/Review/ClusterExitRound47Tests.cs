using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 47: a worker node stopped (SIGTERM) beside a killed peer and a live coordinator, while Akka runs its own
/// coordinated shutdown on that node because a reconnection to the killed peer's port failed its TLS handshake (something
/// else answers there). The leave cannot complete (the killed peer blocks the membership's convergence), and Akka's
/// cluster-exiting phase waited its whole 10 s for it, past the session's <c>LeaveBound</c>, warning "Coordinated
/// shutdown phase [cluster-exiting] timed out". This is how <c>ClusterExitRound45Tests</c> failed once in CI (a clean
/// full suite in Release: the stopped node's stderr held that warning); here a plain TCP listener on the killed node's
/// port makes the failed handshake certain. Mutant tried: the cluster-exiting watcher without its leave bound (it downs the
/// node only when no peer is reachable, the round-46 rule) fails both tests with the warning.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterExitRound47Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>Akka's warning when its coordinated shutdown gave up waiting for this node's exit from the cluster.</summary>
    private const string ExitingWait = "Coordinated shutdown phase [cluster-exiting] timed out";

    /// <summary>What Akka logs when a connection's TLS handshake fails; on an outbound connection it shuts the node down.</summary>
    private const string FailedHandshake = "TLS handshake failed";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The node is stopped first and is leaving when its reconnection to the killed peer fails its handshake: Akka's
    /// shutdown starts during the session's leave. The node exits 130 at its leave bound, without Akka's second wait.
    /// Failed before: Assert.False() Failure ... "[..] WRN] Coordinated shutdown phase [cluster-exiting] timed out after
    /// "00:00:10"" in the stopped node's stderr, ~10 s after its first "TLS handshake failed" (~13 s after the SIGTERM).
    /// </summary>
    [Fact]
    public async Task A_leaving_node_that_akka_shuts_down_meanwhile_exits_at_its_leave_bound()
    {
        await using var cluster = await StartAsync();
        await CliProcess.SignalAsync(cluster.Killed.Pid, "KILL");
        await CliProcess.SignalAsync(cluster.Stopped.Pid, "TERM");
        await cluster.Stopped.WaitForErrorsAsync("actorqueue node: leaving the cluster");
        await using var impostor = await PlainListener.StartAsync(cluster.KilledPort);

        await ExitsWithoutSecondWaitAsync(cluster.Stopped);
    }

    /// <summary>
    /// The other order: Akka's shutdown (the failed handshake) is under way before the SIGTERM, so its cluster-exiting
    /// phase began before the session's leave. The exit is still bounded by the leave bound, from the phase's start.
    /// Failed before: Assert.False() Failure ... "Coordinated shutdown phase [cluster-exiting] timed out after "00:00:10""
    /// in the stopped node's stderr, 10 s after its first "TLS handshake failed".
    /// </summary>
    [Fact]
    public async Task A_node_that_akka_shuts_down_before_its_sigterm_exits_without_a_second_wait()
    {
        await using var cluster = await StartAsync();
        await CliProcess.SignalAsync(cluster.Killed.Pid, "KILL");
        await using var impostor = await PlainListener.StartAsync(cluster.KilledPort);
        await cluster.Stopped.WaitForErrorsAsync(FailedHandshake);
        await CliProcess.SignalAsync(cluster.Stopped.Pid, "TERM");

        await ExitsWithoutSecondWaitAsync(cluster.Stopped);
    }

    /// <summary>
    /// No SIGTERM at all: Akka shuts the node down (the failed handshake) beside a live coordinator while the killed
    /// peer blocks its leave. The phase's own leave bound downs it, and it exits saying it was removed, without the
    /// phase's timeout. Failed before: Assert.False() Failure ... "Coordinated shutdown phase [cluster-exiting] timed
    /// out after "00:00:10"" in the node's stderr. Mutant tried: no bound of the phase's own (the session's give-up only,
    /// and the phase's timeout at 15 s): it failed with "timed out after "00:00:15"".
    /// </summary>
    [Fact]
    public async Task A_node_that_akka_shuts_down_beside_a_live_coordinator_exits_without_a_second_wait()
    {
        await using var cluster = await StartAsync();
        await CliProcess.SignalAsync(cluster.Killed.Pid, "KILL");
        await using var impostor = await PlainListener.StartAsync(cluster.KilledPort);

        var exit = await cluster.Stopped.ExitAsync(TimeSpan.FromSeconds(90));
        var errors = cluster.Stopped.Errors;

        Assert.True(exit == 1, $"a node Akka shut down exits 1, got {exit}; its stderr:\n{errors}");
        Assert.True(errors.Contains("actorqueue node: this node was removed from the cluster", StringComparison.Ordinal), $"the node said it was removed; its stderr:\n{errors}");
        Assert.True(errors.Contains(FailedHandshake, StringComparison.Ordinal), $"Akka's own shutdown ran (a failed handshake); its stderr:\n{errors}");
        Assert.False(errors.Contains(ExitingWait, StringComparison.Ordinal), $"the node's exit was waited for until the phase's timeout; its stderr:\n{errors}");
    }

    private static async Task ExitsWithoutSecondWaitAsync(RunningCli stopped)
    {
        var exit = await stopped.ExitAsync(TimeSpan.FromSeconds(90));
        var errors = stopped.Errors;

        Assert.True(exit == 130, $"a stopped node exits 130, got {exit}; its stderr:\n{errors}");
        Assert.True(errors.Contains("actorqueue node: leaving the cluster", StringComparison.Ordinal), $"the node said it leaves; its stderr:\n{errors}");
        Assert.True(errors.Contains(FailedHandshake, StringComparison.Ordinal), $"Akka's own shutdown ran (a failed handshake); its stderr:\n{errors}");
        Assert.False(errors.Contains(ExitingWait, StringComparison.Ordinal), $"the node's exit was waited for a second time; its stderr:\n{errors}");
    }

    private Task<ThreeCliNodes> StartAsync() => ThreeCliNodes.StartAsync(_scratch.Dir, certificates);
}
