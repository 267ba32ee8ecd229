using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A node's signal line says what a node does at the signal: it stops at once (leaves the cluster, its running jobs go
/// back to the queue). It said a run's words, "no new jobs start; running jobs finish (Ctrl-C kills them)", and then
/// killed the jobs (found by h227's read of the docs against the CLI, round 50).
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class NodeSignalLineRound50Tests : IDisposable
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Failed before: Assert.DoesNotContain() Failure ... "running jobs finish" found in "actorqueue: terminated
    /// (SIGTERM): no new jobs start; running jobs finish (Ctrl-C kills them)" (and "interrupted: …" for SIGINT).
    /// </summary>
    [Theory]
    [InlineData("TERM", "terminated (SIGTERM): the node stops")]
    [InlineData("INT", "interrupted: the node stops")]
    public async Task A_signalled_node_says_it_stops_and_its_jobs_go_back_not_that_they_finish(string signal, string line)
    {
        var port = TestPorts.Free(); // no coordinator there: the node keeps trying to join
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", $"127.0.0.1:{port}", "--insecure-loopback");
        await node.WaitForErrorsAsync("authenticates no peer"); // its actor system has started
        await CliProcess.SignalAsync(node.Pid, signal);

        Assert.Equal(130, await node.ExitAsync(Within));
        Assert.Contains($"actorqueue: {line} (it leaves the cluster; jobs running here stop and go back to the queue)", node.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("running jobs finish", node.Errors, StringComparison.Ordinal);
    }
}
