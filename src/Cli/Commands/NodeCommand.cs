using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>actorqueue node --seed HOST:PORT</c>: a worker node that joins the cluster of an <c>actorqueue run --cluster</c>
/// coordinator and runs its jobs, until the coordinator leaves or Ctrl-C.
/// </summary>
internal static class NodeCommand
{
    /// <summary>
    /// Runs the node with its stderr queued (<see cref="QueuedStderr"/>): its own lines, the signals' and Serilog's (so
    /// Akka's) never block their threads, and once stopped, a reader that takes nothing cannot hold the node.
    /// </summary>
    public static Task<int> RunAsync(string? seed, string listen, int jobs, bool allowRemote, ClusterCertificateOptions certificates,
        Interrupts interrupts)
    {
        interrupts.FirstStage = "the node stops (it leaves the cluster; jobs running here stop and go back to the queue)";
        return QueuedStderr.RunAsync(interrupts, stderr => ServeAsync(seed, listen, jobs, allowRemote, certificates, stderr, interrupts));
    }

    private static async Task<int> ServeAsync(string? seed, string listen, int jobs, bool allowRemote, ClusterCertificateOptions certificates,
        TextWriter stderr, Interrupts interrupts)
    {
        if (seed is null)
        {
            return await Usage.FailAsync(stderr, "node needs --seed HOST:PORT (the --listen address of 'actorqueue run --cluster')");
        }

        ClusterNodeOptions node;
        try
        {
            node = certificates.NodeOptions(ClusterSession.Worker(seed, listen, allowRemote), "node");
        }
        catch (ArgumentException ex)
        {
            return await Usage.FailAsync(stderr, ClusterCertificateOptions.Problem(ex));
        }

        if (await ClusterSession.WorkerProblemAsync(node, seed) is { } problem)
        {
            return await Usage.FailAsync(stderr, problem);
        }

        // Leaves before the certificate ends (exit 78) rather than being refused by every peer that connects after it.
        using var expiry = CertificateExpiry.Watch(certificates, node, coordinator: false, stderr, interrupts);
        var session = ClusterSession.StartNode(node, stderr);

        await using (session)
        {
            var cluster = session.Cluster;
            try
            {
                // Akka's transport shuts the node down when its TLS handshake with the seed fails (a certificate this
                // node's CA did not issue, or the other way round): then the node will never be Up.
                var up = cluster.WhenUpAsync(interrupts.StopInput);
                var first = await Task.WhenAny(up, session.System.WhenTerminated, session.SeedDropsJoins);
                if (first == session.SeedDropsJoins)
                {
                    stderr.WriteLine(ClusterSession.SeedDropsJoinsLine(seed)); // a --seed spelled otherwise than the coordinator's --listen
                    return 1;
                }

                if (first != up)
                {
                    stderr.WriteLine($"actorqueue node: the node stopped before it joined {seed} (see above: a failed TLS handshake means one side's certificate is not from a CA the other trusts, or is not valid by the other's clock: expired, or not valid yet)");
                    return 1;
                }

                await up;
            }
            catch (OperationCanceledException)
            {
                // Not Up: a node its seed never answered has nothing to leave, and the session does not wait to leave it.
                stderr.WriteLine($"actorqueue node: stopped before it joined {seed}");
                return expiry?.Exit(Usage.InterruptedExitCode) ?? Usage.InterruptedExitCode;
            }

            var self = cluster.Cluster.SelfAddress.ToString();
            await using var workers = cluster.RegisterWorkers(ClusterJobs.QueueName, ClusterJobs.Handler(self), jobs);
            stderr.WriteLine($"actorqueue node: {self} joined {seed}; running up to {jobs} job(s) at once");

            // Serve until the coordinator has left the cluster (or this node was removed), or Ctrl-C.
            var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.Cluster.RegisterOnMemberRemoved(() => removed.TrySetResult());
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
            var sawCoordinator = false;
            try
            {
                while (!removed.Task.IsCompleted)
                {
                    var coordinatorPresent = cluster.Cluster.State.Members.Any(member => member.HasRole(ClusterSession.CoordinatorRole));
                    if (sawCoordinator && !coordinatorPresent)
                    {
                        break;
                    }

                    sawCoordinator |= coordinatorPresent;
                    await poll.WaitForNextTickAsync(interrupts.StopInput);
                }
            }
            catch (OperationCanceledException)
            {
                stderr.WriteLine("actorqueue node: leaving the cluster; jobs running here go back to the queue");
                return expiry?.Exit(Usage.InterruptedExitCode) ?? Usage.InterruptedExitCode;
            }

            if (removed.Task.IsCompleted)
            {
                stderr.WriteLine("actorqueue node: this node was removed from the cluster (downed or unreachable); exiting");
                return 1;
            }

            stderr.WriteLine("actorqueue node: the coordinator left; exiting");
            return 0;
        }
    }
}
