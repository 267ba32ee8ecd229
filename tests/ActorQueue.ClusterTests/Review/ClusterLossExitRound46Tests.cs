using ActorQueue.Cli.Commands;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 46: a cluster node whose only peer is dead (killed; a plain TCP listener on its port fails the node's TLS
/// handshake, so Akka shuts the node's actor system down) leaves a cluster where nobody can acknowledge the leave. Its
/// coordinated shutdown waited the whole cluster-exiting phase (10 s) for an exit that could never converge, before the
/// run said it lost its cluster, or the node said it was removed. Mutant tried: ClusterSession's DownWhenLost (now DownWhenExitStalls) not
/// registered (the code before) fails the first two tests; downing whatever the membership fails the third.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLossExitRound46Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>Akka's warning when its coordinated shutdown gave up waiting for this node's exit from the cluster.</summary>
    private const string ExitingWait = "Coordinated shutdown phase [cluster-exiting] timed out";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The coordinator's only worker node is killed while it runs a job: the run stops with its one line and exits 255,
    /// without waiting for a leave its dead peer cannot acknowledge.
    /// Failed before: Assert.DoesNotContain() Failure: Sub-string found, Found: "Coordinated shutdown phase [cluster-exiti"···
    /// (the run's stderr held "Coordinated shutdown phase [cluster-exiting] timed out after "00:00:10"", 10 s after the
    /// failed handshake and just before "actorqueue: the coordinator's cluster node stopped (...)"; the test took 20 s, now 10 s).
    /// </summary>
    [Fact]
    public async Task A_coordinator_whose_only_node_died_does_not_wait_for_its_leave()
    {
        var jobs = _scratch.Write("jobs.txt", [$"touch {_scratch.PathOf("started")}; sleep 120"]);
        var coordinatorListen = $"127.0.0.1:{TestPorts.Free()}";
        var nodePort = TestPorts.Free();
        using var run = new RunningCli(_scratch.Dir, "run", jobs, "-j", "1", "-q", "--cluster", "--listen", coordinatorListen, "--cert-dir", certificates.Coordinator);
        await run.WaitForErrorsAsync("waiting for 1 worker node(s)"); // a node started first is refused, and joins at its next attempt (every 5 s)
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", coordinatorListen, "--listen", $"127.0.0.1:{nodePort}", "-j", "1", "--cert-dir", certificates.Worker);
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), ClusterNodes.StepTimeout, () => $"the job started:\n{run.Errors}\n{node.Errors}");

        await OutlivesItsPeerAsync(run, node, nodePort, 255, "actorqueue: the coordinator's cluster node stopped (");
    }

    /// <summary>
    /// A worker node whose coordinator is killed: the node's reconnection fails its TLS handshake, and the node exits 1
    /// saying it was removed, without waiting for a leave its dead coordinator cannot acknowledge.
    /// Failed before: Assert.DoesNotContain() Failure: Sub-string found, Found: "Coordinated shutdown phase [cluster-exiti"···
    /// (the node's stderr held "[06:50:56 WRN] Coordinated shutdown phase [cluster-exiting] timed out after "00:00:10""; the
    /// test took 19 s, now 10 s).
    /// </summary>
    [Fact]
    public async Task A_node_whose_coordinator_died_does_not_wait_for_its_leave()
    {
        var coordinatorPort = TestPorts.Free();
        using var run = new RunningCli(_scratch.Dir, "run", "-", "-j", "1", "--cluster", "--listen", $"127.0.0.1:{coordinatorPort}", "--cert-dir", certificates.Coordinator);
        await run.WaitForErrorsAsync("waiting for 1 worker node(s)");
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", $"127.0.0.1:{coordinatorPort}", "--listen", $"127.0.0.1:{TestPorts.Free()}",
            "-j", "1", "--cert-dir", certificates.Worker);
        await run.WaitForErrorsAsync("1 worker node(s) joined");
        await node.WaitForErrorsAsync("; running up to");

        await OutlivesItsPeerAsync(node, run, coordinatorPort, 1, "actorqueue node: this node was removed from the cluster");
    }

    /// <summary>
    /// The other side: Akka shuts a worker node down by itself (as after a failed TLS handshake) while its coordinator is
    /// alive and reachable. The node's leave can complete, and is waited for: the coordinator sees it exit and removes it
    /// from Exiting, not from Down. Held before; a mutant that downs the leaving node whatever the membership (the
    /// reachability check of <c>ClusterSession.LeaveIsLost</c> removed) fails it: removed from Down.
    /// </summary>
    [Fact]
    public async Task A_node_shut_down_by_akka_beside_a_live_coordinator_still_leaves()
    {
        var within = TimeSpan.FromSeconds(60);
        var listen = $"127.0.0.1:{TestPorts.Free()}";
        using var stop = new CancellationTokenSource();
        var starting = ClusterSession.StartCoordinatorAsync(ClusterSession.Coordinator(listen, allowRemote: false) with { InsecureLoopback = true },
            minNodes: 1, capacity: 16, TextWriter.Null, quiet: true, stop.Token);
        var worker = ClusterSession.StartNode(ClusterSession.Worker(listen, "", allowRemote: false) with { InsecureLoopback = true }, TextWriter.Null);
        await using var coordinator = await starting.WaitAsync(within);
        Assert.NotNull(coordinator);
        await using (worker)
        {
            await Poll.UntilAsync(() => worker.IsMember && worker.Cluster.Cluster.SelfMember.Status == MemberStatus.Up, within, "the worker is Up", CliScratch.Tick);
            var removed = new TaskCompletionSource<MemberStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
            coordinator.System.ActorOf(Props.Create(() => new RemovalWatcher(worker.Cluster.Cluster.SelfUniqueAddress, removed)));

            await CoordinatedShutdown.Get(worker.System).Run(CoordinatedShutdown.UnknownReason.Instance).WaitAsync(within);

            Assert.Equal(MemberStatus.Exiting, await removed.Task.WaitAsync(within));
        }
    }

    /// <summary>
    /// Kills <paramref name="peer"/> and answers on its port with a plain TCP listener: <paramref name="survivor"/>'s
    /// reconnection fails its TLS handshake and Akka shuts it down. It exits <paramref name="exitCode"/> saying
    /// <paramref name="line"/>, and its coordinated shutdown did not wait out the cluster-exiting phase.
    /// </summary>
    private static async Task OutlivesItsPeerAsync(RunningCli survivor, RunningCli peer, int peerPort, int exitCode, string line)
    {
        await CliProcess.SignalAsync(peer.Pid, "KILL");
        await using var impostor = await PlainListener.StartAsync(peerPort);
        var exit = await survivor.ExitAsync(TimeSpan.FromSeconds(120));

        Assert.True(exit == exitCode, $"actorqueue {survivor.Args} lost its cluster: exit {exitCode} expected, got {exit}: {survivor.Errors}");
        Assert.Contains(line, survivor.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain(ExitingWait, survivor.Errors, StringComparison.Ordinal);
    }

    /// <summary>Completes its source with the status a member had when the cluster removed it.</summary>
    private sealed class RemovalWatcher : ReceiveActor
    {
        public RemovalWatcher(UniqueAddress member, TaskCompletionSource<MemberStatus> removed)
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberRemoved));
            Receive<ClusterEvent.MemberRemoved>(evt =>
            {
                if (evt.Member.UniqueAddress.Equals(member))
                {
                    removed.TrySetResult(evt.PreviousStatus);
                }
            });
        }
    }
}
