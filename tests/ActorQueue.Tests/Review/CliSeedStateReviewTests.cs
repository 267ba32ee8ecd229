using ActorQueue.Cli.Commands;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 164's review of the CLI's bad-input paths: <c>--seed</c> resolved up front (and a node stopped while it
/// waits to join), and a <c>--state</c> FILE that is no run's state. (Split from <see cref="LogSinkEndReviewTests"/>.)
/// </summary>
/// <param name="certificates">The cluster's certificates, for the --seed cases (a non-loopback seed needs them).</param>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CliSeedStateReviewTests(ClusterCertificateDirectories certificates) : IClassFixture<ClusterCertificateDirectories>, IDisposable
{
    /// <summary>Patience for what should take a moment: a hang takes all of it.</summary>
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A --seed host name that does not resolve is bad input: one line naming the option and the value, exit 255,
    /// before the node starts.
    /// Failed before: the node started and Akka tried to join the seed for ever (a warning every few seconds, no exit):
    /// the run did not finish within 90 s.
    /// </summary>
    [Fact]
    public async Task A_seed_host_that_does_not_resolve_is_a_usage_error()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "node", "--seed", "no-such-host.invalid:4053", "--allow-remote", "--cert-dir", certificates.Worker);

        Assert.Equal(255, result.ExitCode);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("actorqueue: --seed no-such-host.invalid:4053: cannot resolve 'no-such-host.invalid' (give the coordinator's IP address, or a name that resolves here): ", line, StringComparison.Ordinal);
        Assert.EndsWith("; see 'actorqueue --help'", line, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// A --seed that is the node's own --listen address is bad input: one line naming both, exit 255.
    /// Failed before: the node formed a cluster of its own, said "akka.tcp://actorqueue@127.0.0.1:PORT joined
    /// 127.0.0.1:PORT", and waited for a coordinator for ever (the run did not finish within 90 s).
    /// </summary>
    [Fact]
    public async Task A_seed_that_is_the_nodes_own_listen_address_is_a_usage_error()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "node", "--seed", "127.0.0.1:4061", "--listen", "127.0.0.1:4061", "--insecure-loopback");

        Assert.Equal(255, result.ExitCode);
        Assert.Equal("actorqueue: --seed 127.0.0.1:4061 is this node's own --listen address (it would form a cluster of its own and wait for ever): give the coordinator's --listen address; see 'actorqueue --help'\n", result.Errors);
    }

    /// <summary>
    /// SIGTERM stops a node that is waiting to join as the runner's own interruption (exit 130), not through Akka's
    /// process-exit hook, which terminated the actor system at once.
    /// Failed before: exit 1, "actorqueue node: the node stopped before it joined 127.0.0.1:PORT (see above: a failed TLS
    /// handshake means one side's certificate is not from a CA the other trusts)", with --insecure-loopback (no TLS at all).
    /// </summary>
    [Fact]
    public async Task Sigterm_stops_a_node_waiting_to_join_as_an_interruption()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port; // no coordinator there: the node keeps trying to join
        }

        using var node = new RunningCli(_scratch.Dir, "node", "--seed", $"127.0.0.1:{port}", "--insecure-loopback");
        await node.WaitForErrorsAsync("authenticates no peer"); // its actor system has started
        await CliProcess.SignalAsync(node.Pid, "TERM");

        Assert.Equal(130, await node.ExitAsync(Within));
        Assert.DoesNotContain("the node stopped before it joined", node.Errors, StringComparison.Ordinal);
    }

    /// <summary>A --seed that resolves (an address, or localhost) passes the check; whether the coordinator is up yet is not checked.</summary>
    [Theory]
    [InlineData("127.0.0.1:4053")]
    [InlineData("localhost:4053")]
    [InlineData("[::1]:4053")]
    public async Task A_seed_that_resolves_passes(string seed) =>
        Assert.Null(await ClusterSession.SeedProblemAsync(seed).WaitAsync(Within));

    /// <summary>
    /// A --state FILE that is another program's SQLite database is refused, one line naming the option and the file,
    /// exit 255, and left as it was; for run, before any job starts.
    /// Failed before: both took it for a state and wrote their tables into it (dead-letters listed no dead letters, exit
    /// 0; run ran the job): the file's bytes changed.
    /// </summary>
    [Theory]
    [InlineData("dead-letters", "is no run's state (it has no record of a run's jobs): give the FILE of a run's --state")]
    [InlineData("run", "is an SQLite database of something else, not a run's state (it has no record of a run's jobs): give a new FILE, or an earlier run's --state FILE")]
    public async Task A_state_file_of_another_program_is_refused_and_left_as_it_was(string command, string problem)
    {
        var path = _scratch.PathOf("other.db");
        using (var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            other.Open();
            using var create = other.CreateCommand();
            create.CommandText = "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');";
            create.ExecuteNonQuery();
        }

        var before = await File.ReadAllBytesAsync(path);
        var jobs = _scratch.PathOf("jobs.txt");
        await File.WriteAllTextAsync(jobs, $"touch {_scratch.PathOf("ran")}\n");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, command == "run" ? ["run", "--state", path, jobs] : ["dead-letters", "--state", path]);

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: --state: '{path}' {problem}; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
        Assert.False(File.Exists(_scratch.PathOf("ran")));
    }

    /// <summary>
    /// dead-letters on an empty file (no run's state) is refused and leaves it empty; run takes an empty file as a new state.
    /// Failed before: dead-letters made the empty file a state (61,440 bytes of tables) and listed no dead letters, exit 0.
    /// </summary>
    [Fact]
    public async Task Dead_letters_refuses_an_empty_file_that_run_takes_as_a_new_state()
    {
        var path = _scratch.PathOf("empty.db");
        await File.WriteAllBytesAsync(path, []);

        var refused = await CliProcess.RunAsync(_scratch.Dir, null, "dead-letters", "--state", path);

        Assert.Equal(255, refused.ExitCode);
        Assert.Equal($"actorqueue: --state: '{path}' is no run's state (it has no record of a run's jobs): give the FILE of a run's --state; see 'actorqueue --help'\n", refused.Errors);
        Assert.Equal(0, new FileInfo(path).Length);

        var run = await CliProcess.RunAsync(_scratch.Dir, "exit 3\n", "run", "-q", "--state", path, "-");
        Assert.True(run.ExitCode == 1, run.Errors);
        var listed = await CliProcess.RunAsync(_scratch.Dir, null, "dead-letters", "--state", path);
        Assert.True(listed.ExitCode == 0, listed.Errors);
        Assert.Contains("exit 3", listed.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// dead-letters --state on a directory says it is one, as run does.
    /// Failed before: "actorqueue: --state: 'DIR' does not exist".
    /// </summary>
    [Fact]
    public async Task Dead_letters_on_a_directory_says_it_is_one()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "dead-letters", "--state", _scratch.Dir);

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: --state: '{_scratch.Dir}' is a directory, not a state file; see 'actorqueue --help'\n", result.Errors);
    }
}
