using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// <c>actorqueue run --cluster</c> and <c>actorqueue node</c> processes under attack from peers without a certificate
/// of the cluster's CA (in this test process, accepting any certificate a server shows); and a node lured by
/// coordinators whose certificates the CA did not issue.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class ClusterSecurityCliTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private const string JobQueue = "actorqueue-jobs";

    /// <summary>What <c>actorqueue node</c> prints once it is a member.</summary>
    private const string Joined = "job(s) at once";

    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-cluster-security-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Rogue_peers_cannot_join_take_or_submit_jobs_while_a_node_with_a_certificate_of_the_CA_runs_them_all()
    {
        var (coordinatorPort, nodePort) = (TestPorts.Free(), TestPorts.Free());
        using var coordinator = new RunningCli(_dir, "run", "-", "--cluster", "--listen", $"127.0.0.1:{coordinatorPort}",
            "--cert-dir", certificates.Coordinator, "-j", "2", "--joblog", "log.tsv");
        await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");

        // Before any worker node: every kind of rogue tries to join the coordinator, take its jobs and put its own.
        var taken = new List<int>();
        foreach (var kind in Enum.GetValues<RogueKind>())
        {
            taken.Add(await AttackAsync(kind, coordinator, coordinatorPort, $"touch pwned-at-coordinator-{kind}"));
        }

        using var node = new RunningCli(_dir, "node", "--seed", $"127.0.0.1:{coordinatorPort}", "--listen", $"127.0.0.1:{nodePort}",
            "--cert-dir", certificates.Worker, "-j", "2");
        await coordinator.WaitForErrorsAsync("1 worker node(s) joined");
        foreach (var i in Enumerable.Range(1, 6))
        {
            await coordinator.Input.WriteLineAsync($"sleep 0.2; echo job{i} on $ACTORQUEUE_NODE");
        }

        await coordinator.Input.FlushAsync();

        // The same at the worker node, which runs the commands, while it runs jobs.
        foreach (var kind in Enum.GetValues<RogueKind>())
        {
            taken.Add(await AttackAsync(kind, node, nodePort, $"touch pwned-at-node-{kind}"));
        }

        coordinator.Input.Close();
        Assert.True(await coordinator.ExitAsync() == 0, coordinator.Errors);
        Assert.True(await node.ExitAsync() == 0, node.Errors);

        var nodeHost = $"127.0.0.1:{nodePort}";
        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"job{i} on akka.ssl.tcp://actorqueue@{nodeHost}").Order(),
            coordinator.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        Assert.All(File.ReadAllLines(Path.Combine(_dir, "log.tsv")).Skip(1), line => Assert.Equal(nodeHost, line.Split('\t')[1]));
        Assert.Empty(Directory.GetFiles(_dir, "pwned-*"));
        Assert.All(taken, count => Assert.Equal(0, count));
    }

    [Fact]
    public async Task A_node_refuses_a_coordinator_without_a_certificate_of_its_CA()
    {
        // (A coordinator without TLS needs no test: a TLS client never completes a handshake with it.)
        foreach (var kind in new[] { RogueKind.SelfSigned, RogueKind.OtherAuthority })
        {
            await using var rogue = RoguePeer.Start(kind);
            var port = await rogue.LureAsync(JobQueue, $"touch pwned-{kind}");
            using var node = new RunningCli(_dir, "node", "--seed", $"127.0.0.1:{port}", "--cert-dir", certificates.Worker);

            // The node's validator refuses the coordinator's certificate; Akka's transport then shuts the node's actor
            // system down, and the node exits instead of waiting forever.
            var exit = await node.ExitAsync(ClusterNodes.StepTimeout);
            Assert.True(exit == 1, $"{kind}: exit {exit}: {node.Errors}");
            Assert.Contains($"ActorQueue refused a connection with cluster peer ssl.tcp://actorqueue@127.0.0.1:{port}", node.Errors, StringComparison.Ordinal);
            Assert.Contains("actorqueue node: the node stopped before it joined", node.Errors, StringComparison.Ordinal);
            Assert.DoesNotContain(Joined, node.Errors, StringComparison.Ordinal);
            // One line per event, with its reason: no page of Akka's TLS troubleshooting text, no stack trace.
            Assert.All(node.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries),
                line => Assert.Matches(@"^(\[\d\d:\d\d:\d\d [A-Z]{3}\] |actorqueue node: )", line));
            Assert.Contains("The remote certificate was rejected by the provided RemoteCertificateValidationCallback", node.Errors, StringComparison.Ordinal);
            Assert.Single(Akka.Cluster.Cluster.Get(rogue.System).State.Members);
        }

        Assert.Empty(Directory.GetFiles(_dir, "pwned-*"));
    }

    /// <summary>
    /// One rogue of <paramref name="kind"/> tries to join through <paramref name="target"/>'s <paramref name="port"/>,
    /// to take jobs and to put <paramref name="command"/>; returns once the target rejected its TLS handshake (failing
    /// if it got in), with the number of jobs it was given.
    /// </summary>
    private static async Task<int> AttackAsync(RogueKind kind, RunningCli target, int port, string command)
    {
        var rejected = target.NextAsync(TlsRejections.Marker);
        await using var rogue = RoguePeer.Start(kind);
        var taken = rogue.Attack(port, JobQueue, command);
        await rogue.WaitRefusedAsync(rejected);
        return taken();
    }
}
