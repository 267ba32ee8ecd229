using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// <c>actorqueue run --cluster</c> and <c>actorqueue node</c> processes under attack from peers without a certificate
/// of the cluster's CA (in this test process, accepting any certificate a server shows); and nodes lured by a
/// coordinator whose certificate the CA did not issue.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSecurityCliTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private const string JobQueue = "actorqueue-jobs";

    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-cluster-security-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Rogue_peers_cannot_join_take_or_submit_jobs_while_a_node_with_a_certificate_of_the_CA_runs_them_all()
    {
        var (coordinatorPort, nodePort) = (ClusterCliTests.FreePort(), ClusterCliTests.FreePort());
        using var coordinator = new RunningCli(_dir, "run", "-", "--cluster", "--listen", $"127.0.0.1:{coordinatorPort}",
            "--cert-dir", certificates.Coordinator, "-j", "2", "--joblog", "log.tsv");
        await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");
        var rogues = new List<(RoguePeer Peer, Func<int> Taken)>();
        try
        {
            // Before any worker node: every kind of rogue tries to join the coordinator, take its jobs and put its own.
            foreach (var kind in Enum.GetValues<RogueKind>())
            {
                var rogue = RoguePeer.Start(kind);
                rogues.Add((rogue, rogue.Attack(coordinatorPort, JobQueue, $"touch pwned-at-coordinator-{kind}")));
            }

            await Task.WhenAll(rogues.Select(rogue => rogue.Peer.WaitRefusedAsync()));

            using var node = new RunningCli(_dir, "node", "--seed", $"127.0.0.1:{coordinatorPort}", "--listen", $"127.0.0.1:{nodePort}",
                "--cert-dir", certificates.Worker, "-j", "2");
            await coordinator.WaitForErrorsAsync("1 worker node(s) joined");

            // The same at the worker node, which runs the commands.
            var atNode = new List<(RoguePeer Peer, Func<int> Taken)>();
            foreach (var kind in Enum.GetValues<RogueKind>())
            {
                var rogue = RoguePeer.Start(kind);
                atNode.Add((rogue, rogue.Attack(nodePort, JobQueue, $"touch pwned-at-node-{kind}")));
            }

            rogues.AddRange(atNode);
            await Task.WhenAll(atNode.Select(rogue => rogue.Peer.WaitRefusedAsync()));

            foreach (var i in Enumerable.Range(1, 6))
            {
                await coordinator.Input.WriteLineAsync($"echo job{i} on $ACTORQUEUE_NODE");
            }

            coordinator.Input.Close();
            Assert.True(await coordinator.ExitAsync() == 0, coordinator.Errors);
            Assert.True(await node.ExitAsync() == 0, node.Errors);

            var nodeHost = $"127.0.0.1:{nodePort}";
            Assert.Equal(Enumerable.Range(1, 6).Select(i => $"job{i} on akka.ssl.tcp://actorqueue@{nodeHost}").Order(),
                coordinator.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
            Assert.All(File.ReadAllLines(Path.Combine(_dir, "log.tsv")).Skip(1), line => Assert.Equal(nodeHost, line.Split('\t')[1]));
            Assert.Empty(Directory.GetFiles(_dir, "pwned-*"));
            Assert.All(rogues, rogue => Assert.Equal((0, false), (rogue.Taken(), rogue.Peer.Up.IsCompleted)));
        }
        finally
        {
            foreach (var (rogue, _) in rogues)
            {
                await rogue.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_node_refuses_a_coordinator_without_a_certificate_of_its_CA()
    {
        var kinds = new[] { RogueKind.Plaintext, RogueKind.SelfSigned, RogueKind.OtherAuthority };
        var rogues = kinds.Select(RoguePeer.Start).ToList();
        var nodes = new List<RunningCli>();
        try
        {
            foreach (var rogue in rogues)
            {
                var port = await rogue.LureAsync(JobQueue, $"touch pwned-{rogue.Kind}");
                nodes.Add(new RunningCli(_dir, "node", "--seed", $"127.0.0.1:{port}", "--cert-dir", certificates.Worker));
            }

            foreach (var node in nodes)
            {
                var seen = await node.WaitForErrorsAsync("ActorQueue refused a connection with cluster peer", "Association failed", " joined ");
                Assert.True(seen != " joined ", $"the node joined a rogue coordinator: {node.Errors}");
            }

            Assert.Empty(Directory.GetFiles(_dir, "pwned-*"));
            Assert.All(rogues, rogue => Assert.Single(Akka.Cluster.Cluster.Get(rogue.System).State.Members));
        }
        finally
        {
            nodes.ForEach(node => node.Dispose());
            foreach (var rogue in rogues)
            {
                await rogue.DisposeAsync();
            }
        }
    }
}
