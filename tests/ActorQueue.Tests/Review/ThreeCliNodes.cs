using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A coordinator (<c>run - --cluster --min-nodes 2</c>) and two worker nodes, all actorqueue processes, started in that
/// order and each seen Up; <see cref="Killed"/> and <see cref="Stopped"/> are what the exit tests do to them. Disposing
/// ends the coordinator's input and waits for it, then kills what is left.
/// </summary>
internal sealed record ThreeCliNodes(RunningCli Coordinator, RunningCli Killed, RunningCli Stopped, int KilledPort) : IAsyncDisposable
{
    /// <summary>Starts the three in <paramref name="dir"/>; a failure part-way disposes what was started.</summary>
    public static async Task<ThreeCliNodes> StartAsync(string dir, ClusterCertificateDirectories certificates)
    {
        var coordinatorListen = $"127.0.0.1:{TestPorts.Free()}";
        var killedPort = TestPorts.Free();
        var coordinator = new RunningCli(dir, "run", "-", "--cluster", "--min-nodes", "2", "--listen", coordinatorListen,
            "--cert-dir", certificates.Coordinator, "-j", "1");
        ThreeCliNodes? cluster = null;
        try
        {
            await coordinator.WaitForErrorsAsync("waiting for 2 worker node(s)");
            cluster = new ThreeCliNodes(coordinator, StartNode(killedPort), StartNode(TestPorts.Free()), killedPort);
            await coordinator.WaitForErrorsAsync("2 worker node(s) joined");
            await cluster.Killed.WaitForErrorsAsync("; running up to");
            await cluster.Stopped.WaitForErrorsAsync("; running up to"); // Up as it sees itself: SIGTERM makes it leave
            return cluster;
        }
        catch
        {
            if (cluster is null)
            {
                coordinator.Dispose();
            }
            else
            {
                await cluster.DisposeAsync();
            }

            throw;
        }

        RunningCli StartNode(int port) =>
            new(dir, "node", "--seed", coordinatorListen, "--listen", $"127.0.0.1:{port}", "-j", "1", "--cert-dir", certificates.Worker);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Coordinator.Input.Close();
            await Coordinator.ExitAsync(TimeSpan.FromSeconds(90));
        }
        finally
        {
            Coordinator.Dispose();
            Killed.Dispose();
            Stopped.Dispose();
        }
    }
}
