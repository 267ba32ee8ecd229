using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 50: cluster addresses no cluster can use are usage errors (one line, exit 255, naming the option and the
/// value, before the joblog exists): an IPv4-mapped IPv6 <c>--listen</c> or <c>--seed</c>, a coordinator's unspecified
/// <c>--listen</c> (<c>0.0.0.0</c>, <c>[::]</c>), and an unspecified <c>--seed</c>.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CliAddressesRound50Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    /// <summary>Far more than a usage error takes (it exits before any node starts); a node or coordinator that started waits for ever.</summary>
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(30);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Failed before: "--listen [::ffff:127.0.0.1]:P: cannot listen there: Invalid argument" (true of the socket, no
    /// help to the user) for the two mapped --listen cases; the coordinator on 0.0.0.0:P or [::]:P started and waited
    /// (its address was 0.0.0.0:P, so a node's join through this machine's name or IP address was dropped as for a
    /// "non-local recipient", and its hint said "node --seed 0.0.0.0:P", which on another machine is that machine's
    /// loopback), and a node with --seed 0.0.0.0:P, [::]:P or [::ffff:127.0.0.1]:P started and waited: "actorqueue run
    /// ... did not exit". Mutants (together): the rule without its IPv4-mapped --listen case (the two mapped --listen
    /// cases fail), with the unspecified case for every --listen (a worker's 0.0.0.0 --listen was then allowed; since
    /// round 51 it is refused too: ClusterSeedSpellingRound51Tests).
    /// </summary>
    [Theory]
    [InlineData("run --cluster --listen [::ffff:127.0.0.1]:{p} --insecure-loopback",
        "--listen [::ffff:127.0.0.1]:{p}: '::ffff:127.0.0.1' is an IPv4 address written as IPv6, which a node cannot listen on (its IPv6 socket takes IPv6 only): give --listen 127.0.0.1:{p}")]
    [InlineData("node --seed 127.0.0.1:{q} --listen [::ffff:127.0.0.1]:{p} --insecure-loopback",
        "--listen [::ffff:127.0.0.1]:{p}: '::ffff:127.0.0.1' is an IPv4 address written as IPv6, which a node cannot listen on (its IPv6 socket takes IPv6 only): give --listen 127.0.0.1:{p}")]
    [InlineData("run --cluster --listen 0.0.0.0:{p} --allow-remote --cert-dir {coordinator}",
        "--listen 0.0.0.0:{p}: an unspecified address (every interface) cannot be the coordinator's: nodes join it at the address it listens as, and '0.0.0.0' names no machine (a join sent to another name of this machine is dropped): give --listen HOST:{p} with HOST an IP address or name of this machine that the nodes reach")]
    [InlineData("run --cluster --listen [::]:{p} --allow-remote --cert-dir {coordinator}",
        "--listen [::]:{p}: an unspecified address (every interface) cannot be the coordinator's: nodes join it at the address it listens as, and '::' names no machine (a join sent to another name of this machine is dropped): give --listen HOST:{p} with HOST an IP address or name of this machine that the nodes reach")]
    [InlineData("node --seed 0.0.0.0:{p} --cert-dir {worker}",
        "--seed 0.0.0.0:{p}: an unspecified address is not a seed (it names no machine, and no coordinator listens as it): give the coordinator's --listen address")]
    [InlineData("node --seed [::]:{p} --cert-dir {worker}",
        "--seed [::]:{p}: an unspecified address is not a seed (it names no machine, and no coordinator listens as it): give the coordinator's --listen address")]
    [InlineData("node --seed [::ffff:127.0.0.1]:{p} --insecure-loopback",
        "--seed [::ffff:127.0.0.1]:{p}: '::ffff:127.0.0.1' is an IPv4 address written as IPv6, where no coordinator listens: give --seed 127.0.0.1:{p}")]
    public async Task An_address_no_cluster_can_use_is_a_usage_error(string command, string problem)
    {
        var (p, q) = (TestPorts.Free(), TestPorts.Free());
        string Expand(string text) => text.Replace("{p}", $"{p}", StringComparison.Ordinal).Replace("{q}", $"{q}", StringComparison.Ordinal)
            .Replace("{coordinator}", certificates.Coordinator, StringComparison.Ordinal).Replace("{worker}", certificates.Worker, StringComparison.Ordinal);
        var args = Expand(command).Split(' ').ToList();
        if (args[0] == "run")
        {
            args.AddRange(["--joblog", "log.tsv", "true", ":::", "a"]); // after :::, every word is an argument
        }

        using var run = new RunningCli(_scratch.Dir, [.. args]);

        Assert.Equal(255, await run.ExitAsync(ExitWithin));
        Assert.Equal($"actorqueue: {Expand(problem)}; see 'actorqueue --help'\n", run.Errors);
        Assert.False(File.Exists(_scratch.PathOf("log.tsv")), "the joblog was created before the refusal");
    }
}
