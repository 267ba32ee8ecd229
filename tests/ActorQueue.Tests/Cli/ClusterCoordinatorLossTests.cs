using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// When the coordinator's own cluster node stops, the jobs it could not hand out (or whose outcome it never learnt) are
/// not logged: the run stops with one clear line and a non-zero exit, and <c>--resume</c> runs them.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterCoordinatorLossTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task Jobs_a_stopped_coordinator_could_not_run_stay_out_of_the_joblog()
    {
        // Every job marks that it started, then waits long; the node runs one at a time.
        var jobs = _scratch.Write("jobs.txt", [.. Enumerable.Range(1, 6).Select(i => $"touch {_scratch.PathOf($"started-{i}")}; sleep 120")]);
        var coordinatorListen = $"127.0.0.1:{TestPorts.Free()}";
        var nodePort = TestPorts.Free();
        using var run = new RunningCli(_scratch.Dir, "run", jobs, "-j", "6", "--joblog", _scratch.PathOf("log.tsv"), "-q",
            "--cluster", "--listen", coordinatorListen, "--cert-dir", certificates.Coordinator);
        await run.WaitForErrorsAsync("waiting for 1 worker node(s)"); // a node started first is refused, and joins at its next attempt (every 5 s)
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", coordinatorListen, "--listen", $"127.0.0.1:{nodePort}", "-j", "1",
            "--cert-dir", certificates.Worker);
        await Poll.UntilAsync(() => Directory.GetFiles(_scratch.Dir, "started-*").Length == 1, ClusterNodes.StepTimeout, () => $"a job started:\n{run.Errors}\n{node.Errors}");

        // The node dies; a plain TCP listener on its port answers the coordinator's reconnection with no TLS at all, so
        // the coordinator's transport fails its handshake and Akka shuts the coordinator's actor system down.
        await CliProcess.SignalAsync(node.Pid, "KILL");
        await using var impostor = await PlainListener.StartAsync(nodePort);

        var exit = await run.ExitAsync(TimeSpan.FromSeconds(120));

        Assert.True(exit == 255, $"a run stopped by its own failure (its cluster lost) exits 255, got {exit}: {run.Errors}");
        Assert.Equal(0, _scratch.JobLogLineCount() > 0 ? _scratch.ReadJobLog().Count : 0); // nothing ran to its end
        Assert.Contains("actorqueue: the coordinator's cluster node stopped", run.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("ObjectDisposedException", run.Errors, StringComparison.Ordinal);
        var stopped = run.Errors[run.Errors.IndexOf("actorqueue: the coordinator's cluster node stopped", StringComparison.Ordinal)..];
        Assert.EndsWith("--resume runs them", stopped[..stopped.IndexOf('\n', StringComparison.Ordinal)], StringComparison.Ordinal); // one line
    }
}
