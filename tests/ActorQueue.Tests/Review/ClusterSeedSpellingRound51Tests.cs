using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 51: Akka drops a message whose recipient's address is not spelled as the receiving node's own ("dropping
/// message for non-local recipient"). A worker whose <c>--seed</c> names its coordinator otherwise than the
/// coordinator's <c>--listen</c> (<c>localhost</c> for <c>127.0.0.1</c>) had its joins dropped and waited for ever; it
/// now says so in one line and exits 1 once its seed has answered for 20 s without letting it join. A worker's
/// <c>--listen</c> on every address (<c>0.0.0.0</c>, <c>[::]</c>) made it a member at <c>0.0.0.0:P</c>, which a
/// coordinator on another machine connects to as itself; it is a usage error, as the coordinator's already was.
/// </summary>
[Collection(ClusterProcessWaitsCollection.Name)]
public sealed class ClusterSeedSpellingRound51Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>Far more than the node's own bound (20 s after its seed answered, which is at once here); before, it never exited.</summary>
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(120);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Failed before: "actorqueue node --seed localhost:P ... did not exit" within 120 s, its stderr only Akka's
    /// "Couldn't join seed nodes after [N] attempts, will try again" every 5 s (the coordinator's: "Dropping message
    /// [Akka.Actor.ActorSelectionMessage] for non-local recipient [[akka.tcp://actorqueue@localhost:P/]]" every 5 s),
    /// with and without TLS. Mutants: NodeCommand not waiting on the seed's silence (did not exit); the watch comparing
    /// the association's address with the seed as the coordinator spells it (127.0.0.1:P; did not exit).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_node_whose_seed_spells_the_coordinator_otherwise_says_so_and_exits(bool tls)
    {
        var port = TestPorts.Free();
        string[] coordinatorAuth = tls ? ["--cert-dir", certificates.Coordinator] : ["--insecure-loopback"];
        string[] workerAuth = tls ? ["--cert-dir", certificates.Worker] : ["--insecure-loopback"];
        using var coordinator = new RunningCli(_scratch.Dir, ["run", "--cluster", "--listen", $"127.0.0.1:{port}", .. coordinatorAuth, "--joblog", "log.tsv", "true", ":::", "a"]);
        await coordinator.WaitForErrorsAsync("cluster coordinator on");

        using var node = new RunningCli(_scratch.Dir, ["node", "--seed", $"localhost:{port}", .. workerAuth]);

        Assert.Equal(1, await node.ExitAsync(ExitWithin));
        Assert.Contains($"actorqueue node: --seed localhost:{port} answers, but did not let this node join within 20 s: a coordinator takes a join only when "
            + "--seed spells its address exactly as its --listen (127.0.0.1 and localhost, or a host name and its IP address, are different to it) and drops the rest; "
            + "give --seed as the coordinator's line 'actorqueue node --seed HOST:PORT' shows it (exiting: the coordinator's address does not change while it runs)\n",
            node.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", node.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// A control (passed before): a node started before its coordinator, so that its seed refuses the connection for
    /// longer than the 20 s bound, is not told that its seed drops its joins; it joins once the coordinator listens and
    /// exits 0 when the run is done. Mutant: the wait started when the node starts, not when the seed answers
    /// (the node exited 1 with the line before the coordinator started).
    /// </summary>
    [Fact]
    public async Task A_node_that_waits_longer_for_its_coordinator_to_start_is_not_told_its_seed_drops_joins()
    {
        var port = TestPorts.Free();
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", $"127.0.0.1:{port}", "--insecure-loopback");
        await node.WaitForErrorsAsync("Couldn't join seed nodes after [3] attempts"); // 15 s after it started
        await node.WaitForErrorsAsync("Couldn't join seed nodes after [5] attempts"); // 25 s: past the 20 s bound

        using var coordinator = new RunningCli(_scratch.Dir, "run", "--cluster", "--listen", $"127.0.0.1:{port}", "--insecure-loopback", "--joblog", "log.tsv", "true", ":::", "a");

        Assert.Equal(0, await coordinator.ExitAsync(ExitWithin));
        Assert.Equal(0, await node.ExitAsync(ExitWithin));
        Assert.Contains($"joined 127.0.0.1:{port}", node.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("did not let this node join", node.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// Failed before: the node started (Assert.Equal() Failure: Expected 255, Actual: the node "did not exit", waiting for
    /// its seed); with a coordinator on this machine it joined as akka.ssl.tcp://actorqueue@0.0.0.0:P, the address a
    /// coordinator on another machine would connect to as its own. Mutant: the unspecified rule for the coordinator only,
    /// as before (the node started).
    /// </summary>
    [Theory]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("[::]", "::")]
    public async Task A_node_listening_on_every_address_is_a_usage_error(string host, string address)
    {
        var (seed, port) = (TestPorts.Free(), TestPorts.Free());
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", $"127.0.0.1:{seed}", "--listen", $"{host}:{port}", "--allow-remote", "--cert-dir", certificates.Worker);

        Assert.Equal(255, await node.ExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal($"actorqueue: --listen {host}:{port}: an unspecified address (every interface) cannot be a node's: the coordinator reaches a node at the address it listens as, "
            + $"and '{address}' names no machine (a coordinator on another machine would connect to itself): give --listen HOST:{port} with HOST an IP address or name of this machine "
            + "that the coordinator reaches; see 'actorqueue --help'\n", node.Errors);
    }
}
