using System.Collections.Concurrent;
using System.Net;
using ActorQueue.Cli.Commands;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;
using Microsoft.Extensions.Time.Testing;
using Serilog.Formatting.Compact;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 172's review of <c>actorqueue node</c>: how it exits when stopped before it joined (nothing to leave), its
/// <c>--seed</c>/<c>--listen</c> self-check on resolved addresses, its <c>-j</c> bound, and <c>--log</c>'s lock-free tally.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CliNodeExitReviewTests : IDisposable
{
    /// <summary>Patience for what should take a moment: a hang takes all of it.</summary>
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A node whose seed never answered is no member of any cluster, and disposing its session does not wait to leave
    /// one: here the leave's bound is on a clock that never moves, so a dispose that waited for it would never end.
    /// Failed before (the session left whatever it was, the IsMember check removed): the dispose did not complete
    /// within 60 s; the real process waited the leave's 10 s bound after Ctrl-C.
    /// </summary>
    [Fact]
    public async Task A_node_its_seed_never_answered_is_no_member_and_disposes_without_waiting_to_leave()
    {
        var options = ClusterSession.Worker($"127.0.0.1:{TestPorts.Free()}", "", allowRemote: false) with { InsecureLoopback = true };
        var session = ClusterSession.StartNode(options, TextWriter.Null, new FakeTimeProvider());

        Assert.False(session.IsMember);
        await session.DisposeAsync().AsTask().WaitAsync(Within);
        Assert.True(session.System.WhenTerminated.IsCompleted);
    }

    /// <summary>
    /// A node that joined is a member (so its session's dispose leaves), and once disposed the coordinator has removed
    /// it. (Whether the dispose's own leave ran cannot be told from outside: the actor system's termination leaves a
    /// cluster it is a member of too, through Akka's coordinated shutdown; with the leave skipped this passes as well.)
    /// </summary>
    [Fact]
    public async Task A_node_that_joined_is_a_member_and_is_removed_once_disposed()
    {
        var listen = $"127.0.0.1:{TestPorts.Free()}";
        using var stop = new CancellationTokenSource();
        var starting = ClusterSession.StartCoordinatorAsync(ClusterSession.Coordinator(listen, allowRemote: false) with { InsecureLoopback = true },
            minNodes: 1, capacity: 16, TextWriter.Null, quiet: true, stop.Token);
        var worker = ClusterSession.StartNode(ClusterSession.Worker(listen, "", allowRemote: false) with { InsecureLoopback = true }, TextWriter.Null);
        var coordinator = await starting.WaitAsync(Within);
        Assert.NotNull(coordinator);
        await using (coordinator)
        {
            await worker.Cluster.WhenUpAsync().WaitAsync(Within);
            await Poll.UntilAsync(() => worker.IsMember, Within, "the worker sees itself a member", CliScratch.Tick);
            var self = worker.Cluster.Cluster.SelfUniqueAddress;

            await worker.DisposeAsync().AsTask().WaitAsync(Within);

            await Poll.UntilAsync(() => !coordinator.Cluster.Cluster.State.Members.Any(member => member.UniqueAddress.Equals(self)),
                Within, "the coordinator removed the worker", CliScratch.Tick);
        }
    }

    /// <summary>
    /// Ctrl-C or SIGTERM on a node its seed never answered (nobody listens there): it says it stopped before it
    /// joined, and exits 130 (an interruption), with no leave to wait for.
    /// Failed before: it said nothing of it (only the interruption's own line) and exited 130 some 10 s later, after
    /// its leave of a cluster it never joined had waited its whole bound.
    /// </summary>
    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task A_node_stopped_before_it_joined_says_so_and_exits_130(string signal)
    {
        var seed = $"127.0.0.1:{TestPorts.Free()}"; // no coordinator there: the node keeps trying to join
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", seed, "--insecure-loopback");
        await node.WaitForErrorsAsync("authenticates no peer"); // its actor system has started
        await CliProcess.SignalAsync(node.Pid, signal);

        Assert.Equal(130, await node.ExitAsync(Within));
        Assert.Contains($"actorqueue node: stopped before it joined {seed}\n", node.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("leaving the cluster", node.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// A --seed that is the node's own --listen address once both are resolved is bad input: one line naming the
    /// option and the value, exit 255, before the node starts.
    /// Failed before: the texts differ, so the node started, dropped its own join messages ("Dropping message
    /// [ActorSelectionMessage] for non-local recipient [akka.tcp://actorqueue@localhost:P/]" every 5 s) and tried to
    /// join itself for ever: the run did not finish within 90 s.
    /// </summary>
    [Theory]
    [InlineData("localhost", "127.0.0.1")]
    [InlineData("127.0.0.1", "localhost")]
    public async Task A_seed_that_resolves_to_the_nodes_own_listen_address_is_a_usage_error(string seedHost, string listenHost)
    {
        var port = TestPorts.Free();

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "node", "--seed", $"{seedHost}:{port}", "--listen", $"{listenHost}:{port}", "--insecure-loopback");

        Assert.True(result.ExitCode == 255, result.Errors);
        Assert.Equal($"actorqueue: --seed {seedHost}:{port} is this node's own --listen address {listenHost}:{port} (here it connects to 127.0.0.1:{port}, "
                     + "where this node listens, and would try to join itself for ever): give the coordinator's --listen address; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// A node's -j past the jobs that can run at once (4096, as for a local run) is bad input: one line naming the
    /// option as typed and the value, exit 255, before the node starts.
    /// Failed before: the node started and tried to join (here nobody listens at the seed: the run did not finish
    /// within 90 s); with a coordinator there, -j 2147483647 joined and then crashed with "Out of memory." (exit 134),
    /// registering a worker per job slot.
    /// </summary>
    [Theory]
    [InlineData("-j", "2147483647")]
    [InlineData("--jobs", "4097")]
    public async Task A_node_jobs_past_the_most_that_can_run_at_once_is_a_usage_error(string option, string value)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "node", "--seed", $"127.0.0.1:{TestPorts.Free()}", option, value, "--insecure-loopback");

        Assert.True(result.ExitCode == 255, result.Errors);
        Assert.Equal($"actorqueue: {option} takes a whole number in 1..4096, got '{value}'; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal("", result.Output);
    }

    /// <summary>A listener on every address takes a seed on loopback with its port; another port, or another address, is another node.</summary>
    [Theory]
    [InlineData("0.0.0.0", "127.0.0.1", 0, true)]
    [InlineData("0.0.0.0", "127.0.0.1", 1, false)]
    [InlineData("127.0.0.1", "127.0.0.2", 0, false)]
    public async Task The_self_check_compares_resolved_addresses_and_ports(string listenHost, string seedHost, int seedPortOffset, bool refused)
    {
        var port = TestPorts.Free();
        var node = new ActorQueue.Cluster.ClusterNodeOptions { ListenHost = listenHost, ListenPort = port, AllowNonLoopback = true }; // as --allow-remote: 0.0.0.0 is not loopback

        var problem = await ClusterSession.WorkerProblemAsync(node, $"{seedHost}:{port + seedPortOffset}").WaitAsync(Within);

        if (refused)
        {
            Assert.StartsWith($"--seed {seedHost}:{port} is this node's own --listen address {listenHost}:{port} ", problem, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(problem);
        }
    }

    /// <summary>
    /// The self-check's rule on addresses as Akka binds and connects them: the same address (an IPv4-mapped one as its
    /// IPv4 address), a listener on every address and a seed on loopback or on this machine of its family, a seed of
    /// 0.0.0.0 (which connects to loopback); not another address, another machine's, another family or another port.
    /// </summary>
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1", true)]
    [InlineData("::ffff:127.0.0.1", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "0.0.0.0", true)]
    [InlineData("10.1.2.3", "0.0.0.0", true)]
    [InlineData("::1", "::", true)]
    [InlineData("0.0.0.0", "127.0.0.1", true)]
    [InlineData("127.0.0.2", "127.0.0.1", false)]
    [InlineData("10.9.9.9", "0.0.0.0", false)]
    [InlineData("127.0.0.1", "::", false)]
    [InlineData("::1", "127.0.0.1", false)]
    public void The_self_check_rule(string seed, string listen, bool own)
    {
        static bool ThisMachine(IPAddress address) => address.Equals(IPAddress.Parse("10.1.2.3"));

        Assert.Equal(own, ClusterSession.IsOwnAddress(new IPEndPoint(IPAddress.Parse(seed), 4053), new IPEndPoint(IPAddress.Parse(listen), 4053), ThisMachine));
        Assert.False(ClusterSession.IsOwnAddress(new IPEndPoint(IPAddress.Parse(seed), 4053), new IPEndPoint(IPAddress.Parse(listen), 4054), ThisMachine));
    }

    /// <summary>
    /// Held, with the tally lock-free: events lost while the end's count is said (logged after the end began, racing
    /// it on dedicated threads) are each in that count or said after it, never both nor neither: the count said plus
    /// the late ones is every event, and the late line is said, once, exactly when some came after the count.
    /// </summary>
    [Fact]
    public async Task Losses_racing_the_end_are_each_in_its_count_or_after_it()
    {
        const int Racers = 4;
        const int PerRacer = 1000;
        for (var round = 0; round < 10; round++)
        {
            var said = new ConcurrentQueue<string>();
            var sink = new LogFileSink(new FailingOutput(), "race.log", new CompactJsonFormatter(), CancellationToken.None, LogFileSink.DefaultMaxQueuedBytes,
                TimeProvider.System, (_, _, _) => { }, said.Enqueue);
            var logger = new Serilog.LoggerConfiguration().WriteTo.Sink(sink).CreateLogger();
            using var start = new Barrier(Racers + 1);
            var racers = Enumerable.Range(0, Racers).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                for (var i = 0; i < PerRacer; i++)
                {
                    logger.Information("Event {Number}", i);
                }
            })).ToList();
            racers.ForEach(racer => racer.Start());

            start.SignalAndWait();
            await sink.DisposeAsync().AsTask().WaitAsync(Within);
            Assert.True(await Task.Run(() => racers.TrueForAll(racer => racer.Join(Within))), "the racers ended");

            Assert.Equal(Racers * PerRacer, sink.NotWritten); // every write fails: none is written, each is counted
            var counted = said.Select(line => System.Text.RegularExpressions.Regex.Match(line, "^actorqueue: ([0-9]+) log event\\(s\\) were not written")).Where(m => m.Success).ToList();
            var count = counted.Count == 0 ? 0 : long.Parse(Assert.Single(counted).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var late = said.Count(line => line.Contains("came after the run's end", StringComparison.Ordinal));
            Assert.Equal(count < sink.NotWritten ? 1 : 0, late);
        }
    }

    /// <summary>An output whose every write fails, as on a full disk.</summary>
    private sealed class FailingOutput : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("No space left on device");

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
