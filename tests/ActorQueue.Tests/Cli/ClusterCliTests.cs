using System.Diagnostics;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary><c>actorqueue run --cluster</c> and <c>actorqueue node</c> as two real processes on loopback, with certificates of one CA.</summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterCliTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-cluster-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>
    /// Runs a coordinator and one worker node until both exit, with certificates of one CA (or both
    /// <c>--insecure-loopback</c>); returns the coordinator's result.
    /// </summary>
    private async Task<CliResult> RunDistributedAsync(bool insecure, params string[] runArgs)
    {
        var listen = $"127.0.0.1:{TestPorts.Free()}";
        string[] Authentication(string certDir) => insecure ? ["--insecure-loopback"] : ["--cert-dir", certDir];
        var run = CliProcess.RunAsync(_dir, null, ["run", .. runArgs, "--cluster", "--listen", listen, .. Authentication(certificates.Coordinator)]);
        using var node = Process.Start(CliProcess.StartInfo(_dir, ["node", "--seed", listen, "-j", "2", .. Authentication(certificates.Worker)]))!;
        var nodeErrors = node.StandardError.ReadToEndAsync();
        node.StandardInput.Close();
        var result = await run;
        using var timeout = new CancellationTokenSource(ClusterNodes.StepTimeout);
        try
        {
            await node.WaitForExitAsync(timeout.Token); // the node exits by itself once the coordinator has left
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            Assert.Fail($"the node did not exit after the coordinator left: {await nodeErrors}");
        }

        Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}: {await nodeErrors}");
        Assert.Contains("the coordinator left", await nodeErrors);
        return result;
    }

    [Fact]
    public async Task A_coordinator_distributes_jobs_to_a_node_process_with_a_joblog_that_resume_continues()
    {
        File.WriteAllLines(PathOf("jobs.txt"), Enumerable.Range(1, 12).Select(i => $"echo job{i} ran on $ACTORQUEUE_NODE"));
        var first = await RunDistributedAsync(false, "jobs.txt", "-j", "4", "--joblog", "log.tsv", "-q");

        Assert.True(first.ExitCode == 0, first.Errors);
        Assert.Contains("waiting for 1 worker node(s)", first.Errors, StringComparison.Ordinal); // how to join: said even when quiet
        Assert.DoesNotContain("worker node(s) joined", first.Errors, StringComparison.Ordinal); // progress: -q leaves it out
        var lines = first.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => $"job{i}").Order(), lines.Select(line => line.Split(' ')[0]).Order());
        var nodes = lines.Select(line => line.Split(' ')[^1]).Distinct().ToList();
        var node = Assert.Single(nodes); // every job ran in the node process...
        var log = File.ReadAllLines(PathOf("log.tsv")).Skip(1).Select(line => line.Split('\t')).ToList();
        Assert.Equal(12, log.Count);
        Assert.All(log, fields => Assert.Equal((node[(node.LastIndexOf('@') + 1)..], "0"), (fields[1], fields[6]))); // ...as the joblog's Host says

        Assert.StartsWith("akka.ssl.tcp://", node, StringComparison.Ordinal); // over mutual TLS

        // Five more jobs; a resumed run (with a new node, both on loopback without authentication) runs only those.
        File.AppendAllLines(PathOf("jobs.txt"), Enumerable.Range(13, 5).Select(i => $"echo job{i} ran on $ACTORQUEUE_NODE"));
        var resumed = await RunDistributedAsync(true, "jobs.txt", "-j", "4", "--joblog", "log.tsv", "--resume", "-q");

        Assert.True(resumed.ExitCode == 0, resumed.Errors);
        Assert.Contains("WARNING: --insecure-loopback: this cluster authenticates no one", resumed.Errors, StringComparison.Ordinal);
        Assert.Contains("authenticates no peer (no TLS)", resumed.Errors, StringComparison.Ordinal); // the library's own warning
        Assert.DoesNotContain("authenticates no peer", first.Errors, StringComparison.Ordinal);
        Assert.All(resumed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Contains(" ran on akka.tcp://", line, StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(13, 5).Select(i => $"job{i}").Order(),
            resumed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(' ')[0]).Order());
        Assert.Equal(Enumerable.Range(1, 17).Select(i => (long)i), File.ReadAllLines(PathOf("log.tsv")).Skip(1).Select(line => long.Parse(line.Split('\t')[0])).Order());
    }
}
