using System.Text;
using System.Text.RegularExpressions;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>Helper 158's review of two carried CLI defects: --log on a FIFO whose reader stops reading held the whole
/// run (the sink wrote each event synchronously under a lock, so every thread that logged waited for that reader, and no
/// Ctrl-C could end the run), and a --listen host name that does not resolve failed inside Akka at bind time.</summary>
/// <param name="certificates">The cluster's certificates, for the --listen cases (a host name needs --allow-remote).</param>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CliLogSinkReviewTests(ClusterCertificateDirectories certificates) : IClassFixture<ClusterCertificateDirectories>, IDisposable
{
    /// <summary>How long a runner gets to exit: a hang takes the whole wait, a prompt exit a second or two.</summary>
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    /// <summary>The start of a job's event in compact JSON (the command, at its end, follows the message's other properties).</summary>
    private const string JobEvent = "\"@mt\":\"Job {JobId} (seq {Seq}) ";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A job whose command is ~100 KB: its log event (which ends with the command) is more than a pipe holds (64 KiB),
    /// so a reader that has stopped reading holds its write. It prints <paramref name="name"/> first.
    /// </summary>
    private static string Big(string name) => $"echo {name}; : {name}-{new string('x', 100_000)}";

    /// <summary>
    /// SIGQUIT (as a second Ctrl-C) kills the running jobs and ends the run, whatever --log's reader does: here it read
    /// the start of the first job's event and then stopped, with the rest of it (and the kill's event) still to write.
    /// The events not written are said, counted, on stderr.
    /// Failed before: the runner had not exited 60 s after SIGQUIT (the thread writing the event was blocked in write(2)
    /// under the sink's lock; the kill's event and the run's end waited for that lock).
    /// </summary>
    [Fact]
    public async Task Sigquit_ends_a_run_whose_log_fifo_reader_stopped_reading()
    {
        var jobs = WriteJobs($"touch {_scratch.PathOf("held")}; sleep 600", Big("big"));
        using var reader = new FifoReader(await _scratch.FifoAsync("log.fifo"));
        using var run = new RunningCli(_scratch.Dir, "run", "-j", "2", "--log", _scratch.PathOf("log.fifo"), jobs);

        await reader.ReadUntilAsync(JobEvent, ExitWithin); // then reads no more
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("held")), ExitWithin, () => $"job 1 started:\n{run.Errors}", CliScratch.Tick);
        await CliProcess.SignalAsync(run.Pid, "QUIT");

        Assert.Equal(130, await run.ExitAsync(ExitWithin));
        Assert.Contains($"actorqueue: --log: cannot write '{_scratch.PathOf("log.fifo")}', some log events are lost", run.Errors, StringComparison.Ordinal);
        Assert.Matches(LostLine, run.Errors);
    }

    /// <summary>
    /// A run that ends by itself while --log's reader has stopped reading ends too: the sink writes what the reader takes
    /// and gives up on the rest (within a moment, as the kill gives up on stdout), saying how many events were not written.
    /// The jobs' results decide the exit status, as with any other --log failure.
    /// Failed before: the runner never exited (the job's event blocked the job's report, so the run never ended).
    /// </summary>
    [Fact]
    public async Task A_run_whose_log_fifo_reader_stopped_reading_ends_by_itself()
    {
        var jobs = WriteJobs(Big("big"));
        using var reader = new FifoReader(await _scratch.FifoAsync("log.fifo"));
        using var run = new RunningCli(_scratch.Dir, "run", "--log", _scratch.PathOf("log.fifo"), jobs);

        await reader.ReadUntilAsync(JobEvent, ExitWithin); // then reads no more

        Assert.Equal(0, await run.ExitAsync(ExitWithin));
        Assert.Equal("big\n", run.Output);
        Assert.Matches(LostLine, run.Errors);
    }

    /// <summary>
    /// A reader that pauses (here until every quick job has finished, with one job still running) and then reads on gets
    /// every event, each whole and in order of emission: the events wait in the sink, none is dropped while it drains,
    /// and no job waits for it meanwhile.
    /// Failed before: job 3 never started (the second slot's job report waited in the sink for the paused reader): the
    /// wait for its output timed out.
    /// </summary>
    [Fact]
    public async Task A_log_fifo_reader_that_pauses_gets_every_event_and_holds_no_job()
    {
        string[] quick = ["j2", "j3", "j4", "j5", "j6"];
        var jobs = WriteJobs([$"until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done; echo j1", .. quick.Select(Big)]);
        using var reader = new FifoReader(await _scratch.FifoAsync("log.fifo"));
        using var run = new RunningCli(_scratch.Dir, "run", "-j", "2", "--log", _scratch.PathOf("log.fifo"), jobs);

        var head = await reader.ReadUntilAsync(JobEvent, ExitWithin);
        await Poll.UntilAsync(() => quick.All(name => run.Output.Contains(name + "\n", StringComparison.Ordinal)), ExitWithin,
            () => $"the quick jobs finished while the log's reader paused; output:\n{run.Output}\nerrors:\n{run.Errors}", CliScratch.Tick);
        var reading = reader.ReadToEndAsync();
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.Equal(0, await run.ExitAsync(ExitWithin));
        var log = head + await reading.WaitAsync(ExitWithin);
        var events = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => line.Contains(JobEvent, StringComparison.Ordinal)).ToList();
        Assert.Equal(6, events.Count);
        Assert.All(quick, name => Assert.Single(events, e => e.Contains($"\"Command\":\"{Big(name)}\"", StringComparison.Ordinal)));
        Assert.DoesNotContain("--log", run.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// The sink's bound, in process: a reader that never reads, and far more events than the bound (1 MiB here) and a
    /// pipe hold. Logging never waits for the reader; past the bound events are dropped, and every event is either
    /// written or counted as not written (the write given up at the end may still land, so it can be both).
    /// New with the fix (the old sink had neither a bound nor a count, so this cannot run against it; its first event's
    /// write held the logging thread in write(2) for good, as the tests above show through the CLI).
    /// </summary>
    [Fact]
    public async Task Past_its_bound_the_log_sink_drops_and_counts_events_and_never_blocks_a_logging_thread()
    {
        const int Events = 200;
        var pad = new string('x', 20_000);
        using var reader = new FifoReader(await _scratch.FifoAsync("bound.fifo"));
        using var kill = new CancellationTokenSource();
        var sink = await OnDedicatedThread(() => new ActorQueue.Cli.Commands.LogFileSink(_scratch.PathOf("bound.fifo"),
            new Serilog.Formatting.Compact.CompactJsonFormatter(), kill.Token, maxQueuedBytes: 1 << 20));
        var logger = new Serilog.LoggerConfiguration().WriteTo.Sink(sink).CreateLogger();

        await OnDedicatedThread(() =>
        {
            for (var i = 0; i < Events; i++)
            {
                logger.Information("Event {Number} {Pad}", i, pad);
            }

            return true;
        });
        Assert.InRange(sink.NotWritten, 1, Events - 1);

        await sink.DisposeAsync().AsTask().WaitAsync(ExitWithin);
        var written = (await reader.ReadToEndAsync().WaitAsync(ExitWithin)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(written, line => Assert.EndsWith($"\"Pad\":\"{pad}\"}}", line, StringComparison.Ordinal));
        Assert.InRange(written.Length + sink.NotWritten, Events, Events + 1);
    }

    /// <summary>
    /// A --listen host name that does not resolve is bad input: one line naming the option and the value, exit 255,
    /// before any job or node starts.
    /// Failed before: exit 134, "Failed to bind to Unspecified/no-such-host.invalid:4053 ... Name or service not known"
    /// and an unhandled AggregateException from Akka's transport.
    /// </summary>
    [Theory]
    [InlineData("run - --cluster --allow-remote --listen no-such-host.invalid:4053 --cert-dir {coordinator}", "no-such-host.invalid:4053")]
    [InlineData("node --seed 127.0.0.1:4053 --allow-remote --listen no-such-host.invalid:4054 --cert-dir {worker}", "no-such-host.invalid:4054")]
    public async Task A_listen_host_that_does_not_resolve_is_a_usage_error(string command, string value)
    {
        var args = command.Replace("{worker}", certificates.Worker).Replace("{coordinator}", certificates.Coordinator).Split(' ');

        var result = await CliProcess.RunAsync(_scratch.Dir, $"touch {_scratch.PathOf("ran")}\n", args);

        Assert.Equal(255, result.ExitCode);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"actorqueue: --listen {value}: cannot resolve 'no-such-host.invalid' (give an IP address or a name of this machine): ", line, StringComparison.Ordinal);
        Assert.EndsWith("; see 'actorqueue --help'", line, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
        Assert.False(File.Exists(_scratch.PathOf("ran")));
    }

    /// <summary>The help says what --listen takes, for both commands.</summary>
    [Theory]
    [InlineData("run")]
    [InlineData("node")]
    public async Task The_help_says_what_listen_takes(string command)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, command, "--help");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Contains("HOST is an IP address or a name whose last IPv4 address (the one bound) is this machine's",
            string.Join(' ', result.Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    /// <summary>The line that says how many log events (one or more) were not written.</summary>
    private Regex LostLine => new($"actorqueue: [1-9][0-9]* log event\\(s\\) were not written to --log '{Regex.Escape(_scratch.PathOf("log.fifo"))}'");

    /// <summary>Runs <paramref name="work"/> on a thread of its own (it may block), failing if it has not returned within <see cref="ExitWithin"/>.</summary>
    private static Task<T> OnDedicatedThread<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).WaitAsync(ExitWithin);

    private string WriteJobs(params string[] lines)
    {
        var path = _scratch.PathOf("jobs.txt");
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }

    /// <summary>
    /// The test's end of a FIFO: opened (which waits for the writer) and read on a dedicated thread, never on a blocked
    /// pool thread; between reads it reads nothing, as a reader that stopped reading.
    /// </summary>
    private sealed class FifoReader : IDisposable
    {
        private readonly string _path;
        private readonly Task<FileStream> _opened;

        public FifoReader(string path)
        {
            _path = path;
            _opened = Task.Factory.StartNew(() => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        /// <summary>Reads until the text read holds <paramref name="marker"/>, then stops; returns what it read.</summary>
        public Task<string> ReadUntilAsync(string marker, TimeSpan within) =>
            Dedicated(stream =>
            {
                var text = new StringBuilder();
                var buffer = new byte[4096];
                while (!text.ToString().Contains(marker, StringComparison.Ordinal))
                {
                    var read = stream.Read(buffer);
                    Assert.True(read > 0, $"the FIFO ended before '{marker}':\n{text}");
                    text.Append(Encoding.UTF8.GetString(buffer, 0, read));
                }

                return text.ToString();
            }).WaitAsync(within);

        /// <summary>Reads on to the end (every writer closed).</summary>
        public Task<string> ReadToEndAsync() => Dedicated(stream => new StreamReader(stream).ReadToEnd());

        public void Dispose()
        {
            if (!_opened.IsCompleted)
            {
                // No writer came: one opened here lets the pending open return, so its thread ends.
                using var writer = new FileStream(_path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            }

            _opened.Result.Dispose();
        }

        private Task<string> Dedicated(Func<FileStream, string> read) =>
            Task.Factory.StartNew(() => read(_opened.Result), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }
}
