using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 45: a cluster node whose leave cannot complete (a peer was killed: it is unreachable, so the membership never
/// converges) waits <c>ClusterSession.LeaveBound</c> for it and then shuts down, without waiting for the leave again.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterExitRound45Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>Akka's warning when its coordinated shutdown gave up waiting for this node's exit from the cluster.</summary>
    private const string SecondWait = "Coordinated shutdown phase [cluster-exiting] timed out";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A coordinator and two worker nodes; one node is killed, then the other is stopped (SIGTERM) and the coordinator's
    /// input ends. Neither can complete its leave (the killed node blocks the membership's convergence), so each waits its
    /// leave bound and shuts down: neither says that Akka's shutdown waited for the exit a second time.
    /// Failed before: after the leave bound the session's <c>Terminate()</c> ran Akka's whole coordinated shutdown, whose
    /// cluster-exiting phase waited for the same exit another 10 s, and both stderrs held
    /// "Coordinated shutdown phase [cluster-exiting] timed out after 00:00:10".
    /// </summary>
    [Fact]
    public async Task Nodes_whose_leave_a_killed_peer_blocks_do_not_wait_for_it_twice()
    {
        var coordinatorListen = $"127.0.0.1:{ClusterCliTests.FreePort()}";
        using var coordinator = new RunningCli(_scratch.Dir, "run", "-", "--cluster", "--min-nodes", "2", "--listen", coordinatorListen,
            "--cert-dir", certificates.Coordinator, "-j", "1");
        await coordinator.WaitForErrorsAsync("waiting for 2 worker node(s)");
        using var killed = StartNode(coordinatorListen);
        using var stopped = StartNode(coordinatorListen);
        await coordinator.WaitForErrorsAsync("2 worker node(s) joined");
        await killed.WaitForErrorsAsync("; running up to");
        await stopped.WaitForErrorsAsync("; running up to"); // Up as it sees itself: SIGTERM makes it leave

        await CliProcess.SignalAsync(killed.Pid, "KILL");
        await CliProcess.SignalAsync(stopped.Pid, "TERM");
        coordinator.Input.Close();

        var stoppedExit = await stopped.ExitAsync(TimeSpan.FromSeconds(90));
        var coordinatorExit = await coordinator.ExitAsync(TimeSpan.FromSeconds(90));

        Assert.True(stoppedExit == 130, $"a stopped node exits 130, got {stoppedExit}: {stopped.Errors}");
        Assert.Contains("actorqueue node: leaving the cluster", stopped.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain(SecondWait, stopped.Errors, StringComparison.Ordinal);
        Assert.True(coordinatorExit == 0, $"a run with no jobs exits 0, got {coordinatorExit}: {coordinator.Errors}");
        Assert.DoesNotContain(SecondWait, coordinator.Errors, StringComparison.Ordinal);
    }

    private RunningCli StartNode(string seed) =>
        new(_scratch.Dir, "node", "--seed", seed, "--listen", $"127.0.0.1:{ClusterCliTests.FreePort()}", "-j", "1", "--cert-dir", certificates.Worker);
}
