using ActorQueue.Cli.Security;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A worker node whose certificate ends while it runs jobs, with real processes: a coordinator, a node with a
/// certificate of a year and a node with one of a minute, issued by the library (<c>cert node</c>'s <c>--days</c> is at
/// least 1).
/// </summary>
[Collection(ClusterProcessWaitsCollection.Name)]
public sealed class CertificateExpiryProcessRound51Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-expiry-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A certificate directory for a node named <paramref name="name"/> whose certificate, from the test CA, ends a minute from now; and that end.</summary>
    private (string Directory, DateTimeOffset End) MinuteCertificate(string name)
    {
        using var authority = CertificateFiles.ReadAuthorityWithKey("--ca", certificates.Authority);
        using var minute = ClusterCertificates.IssueNode(authority, name, TimeSpan.FromMinutes(1));
        var directory = Path.Combine(_dir, name);
        CertificateFiles.CreateDirectory("--out", directory);
        CertificateFiles.WriteNode(directory, minute, authority);
        return (directory, new DateTimeOffset(minute.NotAfter.ToUniversalTime()));
    }

    /// <summary>
    /// The node leaves in order before its certificate ends, with one line naming the certificate and its end, exit 78;
    /// the jobs it was running run again on the other node, and the run completes every job once.
    /// </summary>
    /// <remarks>
    /// Failed before: "actorqueue node --seed 127.0.0.1:P --cert-dir .../ending -j 2 did not exit" (the node ran on past
    /// its certificate's end with nothing said: its connections were made while the certificate was valid, and only a
    /// new handshake checks it; a node that joined after the end stopped instead, exit 1, "the node stopped before it
    /// joined").
    /// </remarks>
    [Fact]
    public async Task A_worker_leaves_before_its_certificate_ends_and_the_run_completes_every_job()
    {
        var (ending, end) = MinuteCertificate("ending");

        var seed = $"127.0.0.1:{TestPorts.Free()}";
        using var coordinator = new RunningCli(_dir, "run", "-", "--cluster", "--listen", seed, "--cert-dir", certificates.Coordinator,
            "-j", "4", "--min-nodes", "2", "--joblog", "log.tsv");
        await coordinator.WaitForErrorsAsync("waiting for 2 worker node(s)");
        using var lasting = new RunningCli(_dir, "node", "--seed", seed, "--cert-dir", certificates.Worker, "-j", "2");
        using var leaving = new RunningCli(_dir, "node", "--seed", seed, "--cert-dir", ending, "-j", "2");
        await coordinator.WaitForErrorsAsync("2 worker node(s) joined");

        // Jobs keep coming, a few more than both nodes run, until the ending node has gone: it has jobs running as it
        // leaves. Each job notes every node that started it.
        var leavingExit = leaving.ExitAsync(end - DateTimeOffset.UtcNow + ClusterNodes.StepTimeout);
        var written = 0;
        while (!leavingExit.IsCompleted)
        {
            written++;
            await coordinator.Input.WriteLineAsync($"echo $ACTORQUEUE_NODE >> started-{written}; sleep 2; echo job{written}");
            await coordinator.Input.FlushAsync();
            var target = written;
            await Poll.UntilAsync(() => leavingExit.IsCompleted || Done(coordinator) > target - 8, ClusterNodes.StepTimeout,
                () => $"the run did not go on: {coordinator.Errors}", TimeSpan.FromMilliseconds(50));
        }

        var exit = await leavingExit;
        var leftAt = DateTimeOffset.UtcNow;
        Assert.True(exit == CertificateExpiry.ExitCode, $"exit {exit}: {leaving.Errors}");
        Assert.True(leftAt < end, $"the node left at {leftAt:O}, after its certificate's end {end:O}: {leaving.Errors}");
        Assert.Contains($"actorqueue node: WARNING: --cert-dir '{Path.Combine(ending, "node.pfx")}' holds 'CN=ending', which expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z", leaving.Errors, StringComparison.Ordinal);
        Assert.Contains($"actorqueue: the node's certificate --cert-dir '{Path.Combine(ending, "node.pfx")}' ('CN=ending') expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z", leaving.Errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue node: leaving the cluster; jobs running here go back to the queue", leaving.Errors, StringComparison.Ordinal);

        coordinator.Input.Close();
        Assert.True(await coordinator.ExitAsync() == 0, coordinator.Errors);
        Assert.True(await lasting.ExitAsync() == 0, lasting.Errors);

        // Every job once in the output and the joblog; some ran on the ending node, and one it was running ran again.
        Assert.Equal(Enumerable.Range(1, written).Select(i => $"job{i}").Order(), coordinator.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        var hosts = File.ReadAllLines(Path.Combine(_dir, "log.tsv")).Skip(1).Select(line => line.Split('\t')[1]).ToList();
        Assert.Equal(written, hosts.Count);
        var endingNode = System.Text.RegularExpressions.Regex.Match(leaving.Errors, @"actorqueue node: (\S+) joined").Groups[1].Value;
        Assert.Contains(endingNode[(endingNode.LastIndexOf('@') + 1)..], hosts);
        var starts = Enumerable.Range(1, written).Select(i => File.ReadAllLines(Path.Combine(_dir, $"started-{i}"))).ToList();
        Assert.Contains(starts, nodes => nodes.Length == 2 && nodes[0] == endingNode && nodes[1] != endingNode);
    }

    /// <summary>
    /// A coordinator whose certificate ends stops its run as interrupted before the end, with one line naming the
    /// certificate and its end, exit 78: the jobs running finish and are logged, the queued ones are counted as not
    /// started, and <c>--resume</c> with a new certificate runs exactly the rest.
    /// </summary>
    /// <remarks>
    /// Failed before (measured by hand, the same cluster): the coordinator ran on past its certificate's end, said nothing
    /// and completed its run, exit 0, while a node that joined after the end stopped, exit 1.
    /// </remarks>
    [Fact]
    public async Task A_coordinator_stops_its_run_as_interrupted_before_its_certificate_ends_and_resume_runs_the_rest()
    {
        var (ending, end) = MinuteCertificate("ending-coordinator");

        var seed = $"127.0.0.1:{TestPorts.Free()}";
        using var coordinator = new RunningCli(_dir, "run", "-", "--cluster", "--listen", seed, "--cert-dir", ending, "-j", "2", "--joblog", "log.tsv");
        await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");
        using var node = new RunningCli(_dir, "node", "--seed", seed, "--cert-dir", certificates.Worker, "-j", "2");
        await coordinator.WaitForErrorsAsync("1 worker node(s) joined");

        var coordinatorExit = coordinator.ExitAsync(end - DateTimeOffset.UtcNow + ClusterNodes.StepTimeout);
        var jobs = new List<string>();
        try
        {
            while (!coordinatorExit.IsCompleted)
            {
                jobs.Add($"sleep 1; echo job{jobs.Count + 1}");
                await coordinator.Input.WriteLineAsync(jobs[^1]);
                await coordinator.Input.FlushAsync();
                var target = jobs.Count;
                await Poll.UntilAsync(() => coordinatorExit.IsCompleted || Done(coordinator) > target - 6, ClusterNodes.StepTimeout,
                    () => $"the run did not go on: {coordinator.Errors}", TimeSpan.FromMilliseconds(50));
            }
        }
        catch (IOException)
        {
            // The run stopped reading and exited while a job was being written: that job was not read.
        }

        var exit = await coordinatorExit;
        var stoppedAt = DateTimeOffset.UtcNow;
        Assert.True(exit == CertificateExpiry.ExitCode, $"exit {exit}: {coordinator.Errors}");
        Assert.True(stoppedAt < end, $"the run stopped at {stoppedAt:O}, after its certificate's end {end:O}: {coordinator.Errors}");
        var certificate = $"--cert-dir '{Path.Combine(ending, "node.pfx")}'";
        Assert.Contains($"actorqueue: WARNING: {certificate} holds 'CN=ending-coordinator', which expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z", coordinator.Errors, StringComparison.Ordinal);
        Assert.Contains($"actorqueue: the coordinator's certificate {certificate} ('CN=ending-coordinator') expires {end.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z", coordinator.Errors, StringComparison.Ordinal);
        Assert.Contains("renew it ('actorqueue cert node') and restart: no new jobs start; running jobs finish", coordinator.Errors, StringComparison.Ordinal);
        Assert.True(await node.ExitAsync() == 0, node.Errors);

        // What finished is in the output and the joblog, once each; --resume with a valid certificate runs the rest once.
        var finished = coordinator.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(finished.Length, File.ReadAllLines(Path.Combine(_dir, "log.tsv")).Length - 1);
        Assert.True(finished.Length < jobs.Count, $"all {jobs.Count} jobs finished: {coordinator.Errors}");
        await File.WriteAllLinesAsync(Path.Combine(_dir, "jobs.txt"), jobs);
        var seed2 = $"127.0.0.1:{TestPorts.Free()}";
        using var resumed = new RunningCli(_dir, "run", "jobs.txt", "--cluster", "--listen", seed2, "--cert-dir", certificates.Coordinator,
            "-j", "4", "--joblog", "log.tsv", "--resume");
        using var node2 = new RunningCli(_dir, "node", "--seed", seed2, "--cert-dir", certificates.Worker, "-j", "4");
        Assert.True(await resumed.ExitAsync() == 0, resumed.Errors);
        Assert.Equal(Enumerable.Range(1, jobs.Count).Select(i => $"job{i}").Order(),
            finished.Concat(resumed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Order());
        Assert.True(await node2.ExitAsync() == 0, node2.Errors);
    }

    /// <summary>The jobs the run has finished: its output's lines.</summary>
    private static int Done(RunningCli run) => run.Output.Count(c => c == '\n');
}
