using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;

namespace ActorQueue.Cli.Commands;

/// <summary>The cluster node behind <c>actorqueue run --cluster</c> and <c>actorqueue node</c>.</summary>
internal sealed partial class ClusterSession : IAsyncDisposable
{
    /// <summary>
    /// Akka's own console output would mix with the jobs' output; everything goes through Serilog instead. And Akka's
    /// process-exit hook is off: on SIGTERM it terminated the actor system at once, beside the runner's own handling (stop
    /// new jobs, let running ones finish, leave the cluster), so a node waiting to join said its TLS handshake had failed
    /// and exited 1, and a coordinator lost its running jobs' results.
    /// </summary>
    private static readonly Config QuietConsole = ConfigurationFactory.ParseString(
        "akka.stdout-loglevel = OFF\nakka.loglevel = WARNING\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off");

    /// <summary>
    /// The CLI's one change to Akka's remoting defaults, for both the coordinator and its nodes; the reasons are in the
    /// HOCON comment. hocon/cluster.conf, the library's overlay, keeps Akka's 5 s: a library cluster may be large (each
    /// member reconnects to a dead one on its own) and its start order is the application's, not a user's at a shell.
    /// </summary>
    private static readonly Config Remoting = ConfigurationFactory.ParseString("""
        # A node started before its coordinator (the usual order) is refused on its first join attempt, and Akka then
        # gates the coordinator's address for retry-gate-closed-for: what is sent there goes to dead letters until it
        # opens. Akka's 5 s equals the node's join retry interval (akka.cluster.seed-node-timeout, 5 s), so its second
        # attempt fell inside the gate its first refusal had closed, and the node joined at its third attempt, ~10 s
        # after the coordinator started, warning "Couldn't join seed nodes after [2] attempts". With 2 s the gate is
        # open again well before the next attempt, and the node joins within 5 s of the coordinator listening.
        # What else the gate spaces: reconnections to an address whose connection failed. A killed peer is retried about
        # every 3 s instead of 6 s (heartbeats and gossip trigger it) until the split-brain resolver downs it (stable-
        # after 20 s) and its address is quarantined; each retry is one refused TCP connection and two warnings (18
        # lines on the coordinator's stderr instead of 8, measured). A run or node whose dead peer's port answers
        # without TLS (another process took it) fails that handshake 3 s sooner, but exits as before, within a second of
        # its heartbeats marking the peer unreachable (~5 s after the death; DownWhenExitStalls). A live peer whose connection
        # dropped is reconnected before its missing heartbeats (1 s, acceptable pause 3 s) mark it unreachable, about 5
        # s after the drop (measured), where a 5 s gate let them. A healthy leave hands the singleton over while the
        # connections are up, before the gate plays any part (a finished run's node exits as before, with no refused
        # reconnection). Akka warns that below a second reconnections can storm.
        # seed-node-timeout stays 5 s: a node waiting for its coordinator tries, and warns, at each attempt (three lines
        # every 5 s), and users start nodes first and may leave them waiting for minutes.
        akka.remote.retry-gate-closed-for = 2s
        """);

    /// <summary>What the CLI's nodes run with over the cluster overlay: <see cref="QuietConsole"/>, <see cref="Remoting"/> and <see cref="ExitingPhase"/>.</summary>
    private static Config CliConfig => QuietConsole.WithFallback(Remoting).WithFallback(ExitingPhase);

    /// <summary>The role of the node that runs <c>actorqueue run --cluster</c>; it distributes jobs and runs none itself.</summary>
    public const string CoordinatorRole = "coordinator";

    /// <summary>The distributed job queue; a coordinator session has one once its worker nodes have joined.</summary>
    private DistributedWorkQueue<RemoteJob, RemoteJobResult>? _queue;

    private ClusterSession(ActorSystem system)
    {
        System = system;
        Cluster = ActorQueueCluster.Get(system);
        DownWhenExitStalls(system);
    }

    public ActorSystem System { get; }

    public ActorQueueCluster Cluster { get; }

    /// <summary>Runs jobs on the worker nodes (coordinator sessions only).</summary>
    public IJobExecutor Executor => new ClusterJobExecutor(_queue ?? throw new InvalidOperationException("not a coordinator session"), System.WhenTerminated, () => WorkerNodes);

    /// <summary>
    /// Starts the coordinator: it forms a cluster on <paramref name="node"/>'s address, waits for
    /// <paramref name="minNodes"/> worker nodes, and returns with the distributed job queue ready. <c>null</c> when
    /// stopped while waiting. It always says how to join (without it a quiet run looks hung); <paramref name="quiet"/>
    /// (<c>-q</c>: no progress) leaves out the line that the nodes joined.
    /// </summary>
    public static async Task<ClusterSession?> StartCoordinatorAsync(ClusterNodeOptions node, int minNodes, int capacity,
                                                                     TextWriter stderr, bool quiet, CancellationToken stop)
    {
        WarnIfInsecure(node, stderr);
        var system = ActorQueueClusterRuntime.Create(node with { Roles = [CoordinatorRole] }, CliConfig);
        var session = new ClusterSession(system);
        try
        {
            await session.Cluster.WhenUpAsync(stop);
            var listen = node.SeedNodes[0];
            var join = node.InsecureLoopback ? ClusterCertificateOptions.InsecureOption : "--cert-dir DIR with a certificate of the same CA";
            stderr.WriteLine($"actorqueue: cluster coordinator on {listen}; waiting for {minNodes} worker node(s) (actorqueue node --seed {listen} {join})");
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (session.WorkerNodes < minNodes)
            {
                if (system.WhenTerminated.IsCompleted)
                {
                    stderr.WriteLine("actorqueue: the coordinator's cluster node stopped (see above)");
                    await session.DisposeAsync();
                    return null;
                }

                await poll.WaitForNextTickAsync(stop);
            }

            if (!quiet)
            {
                stderr.WriteLine($"actorqueue: {session.WorkerNodes} worker node(s) joined; distributing jobs");
            }

            session._queue = session.Cluster.WorkQueue<RemoteJob, RemoteJobResult>(ClusterJobs.QueueName, maxSize: capacity, timeout: Timeout.InfiniteTimeSpan);
            return session;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await session.DisposeAsync();
            return null;
        }
    }

    /// <summary>Starts a worker node that joins the cluster of its seed; <paramref name="clock"/> times its leave (<see cref="LeaveBound"/>).</summary>
    public static ClusterSession StartNode(ClusterNodeOptions node, TextWriter stderr, TimeProvider? clock = null)
    {
        WarnIfInsecure(node, stderr);
        return StartWorker(node, clock ?? TimeProvider.System);
    }

    private static void WarnIfInsecure(ClusterNodeOptions node, TextWriter stderr)
    {
        if (node.InsecureLoopback)
        {
            stderr.WriteLine($"actorqueue: WARNING: {ClusterCertificateOptions.InsecureOption}: this cluster authenticates no one; any process on this host can join it and run commands on its worker nodes");
        }
    }

    /// <summary>Worker-role members that are Up.</summary>
    public int WorkerNodes => Cluster.Cluster.State.Members.Count(member => member.Status == MemberStatus.Up && member.HasRole(Cluster.Settings.WorkerRole));

    /// <summary>How long <see cref="DisposeAsync"/> waits for a member to leave before it shuts the node down anyway.</summary>
    public static readonly TimeSpan LeaveBound = TimeSpan.FromSeconds(10);

    /// <summary>Times <see cref="LeaveBound"/> (a test's fake clock shows a dispose that would wait for it).</summary>
    internal TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>
    /// Whether this node has a membership to leave: the cluster's state as this node sees it has it as a member (joining,
    /// up, leaving; not yet removed). A node whose seed never answered (a <c>--seed</c> where nobody listens, or a
    /// coordinator not started yet) has none: its leave waited the whole <see cref="LeaveBound"/> for a membership that
    /// never formed, so a node stopped before it joined took 10 s to exit.
    /// </summary>
    internal bool IsMember
    {
        get
        {
            var self = Cluster.Cluster.SelfUniqueAddress;
            return Cluster.Cluster.State.Members.Any(member => member.UniqueAddress.Equals(self) && member.Status != MemberStatus.Removed);
        }
    }

    /// <summary>
    /// Leaves the cluster if this node is a member of one (running items elsewhere are unaffected) and shuts the node
    /// down. A leave that has not completed within <see cref="LeaveBound"/> (a peer is gone, so the membership cannot
    /// converge) is not waited for again: the coordinated shutdown starts after its cluster-exiting phase, whose own
    /// wait for the same exit (10 s) made such a node take 20 s to go.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_queue is not null)
        {
            await _queue.DisposeAsync();
        }

        if (!System.WhenTerminated.IsCompleted && IsMember)
        {
            try
            {
                await Cluster.LeaveAsync().WaitAsync(LeaveBound, Clock);
            }
            catch (TimeoutException)
            {
                // A node that could not leave in time is simply shut down; the others down it. Its items are already back
                // with the cluster (the queue and the node's workers were disposed before the leave). The shutdown's
                // exiting-done phase still tells the peers it is going and stops the cluster daemon; an Akka shutdown
                // already under way (this node was downed meanwhile, or a failed TLS handshake started it) is the one
                // awaited, and its cluster-exiting phase, if it waits there for the same exit, downs this node now
                // (DownWhenExitStalls) instead of waiting out its own timeout.
                _leaveGivenUp = true;
                await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClusterLeavingReason.Instance, CoordinatedShutdown.PhaseClusterExitingDone);
            }
        }

        await System.Terminate();
    }
}
