using System.Diagnostics;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 150's review of the CLI's left-overs: the help's account of how a stopped run continues (the joblog's
/// --resume, or the same command with --state), the cluster-loss line in each mode, what the joblog records for a job
/// a signal killed, and usage errors that named the library's option instead of the command line's.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CliLeftoversReviewTests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The help checked against what the code does. The notes on stopping a run said only that --resume continues it and
    /// runs the killed jobs again; with --state (where --resume is a usage error) the same command does, and Ctrl-\
    /// (SIGQUIT), which kills as a second Ctrl-C does, was not named there. --resume and --resume-failed are usage errors
    /// beside --state, and --state beside --cluster, yet no help said so; --state's said a run "killed" restarts, where
    /// any stop does. --log now takes a FIFO or /dev/stderr (see <see cref="A_log_on_a_pipe_receives_the_events"/>).
    /// Failed before: the notes said "(the joblog stays complete, so --resume continues where the run stopped)", and none
    /// of the option lines or the cluster notes named the option it cannot go with.
    /// </summary>
    [Theory]
    [InlineData("run", "Ctrl-C once, SIGTERM or SIGHUP: no new jobs start and running jobs finish (their records are complete: "
                       + "--resume with the joblog, or the same command with --state, continues where the run stopped); "
                       + "Ctrl-C again or Ctrl-\\ (SIGQUIT): running jobs' process groups are killed (they are not recorded as "
                       + "finished, so --resume, or the same command with --state, runs them again).")]
    [InlineData("run", "--resume skip the jobs FILE of --joblog records as finished, and append to it (a last record a crash cut short "
                       + "is dropped, so that job runs again; not with --state, which continues a run by itself)")]
    [InlineData("run", "--resume-failed like --resume, but also run again the jobs the joblog records as failed (not with --state: "
                       + "'actorqueue dead-letters requeue' runs failed jobs again)")]
    [InlineData("run", "--state <FILE> keep the run's jobs in a durable queue in the SQLite FILE: a run stopped in any way (even by "
                       + "SIGKILL) and started again as the same command runs only the jobs that did not finish; failed jobs become "
                       + "dead letters (see 'actorqueue dead-letters'); not with --resume or --cluster")]
    [InlineData("run", "--log <FILE> write structured logs (Serilog compact JSON): one event per job, plus the queue's and limiters' own "
                       + "events; appended to FILE, which may also be a FIFO or /dev/stderr")]
    [InlineData("node", "With --cluster, joblog, --resume, --retries and --limit work as usual (the joblog's Host column names the node "
                        + "that ran each job); --state does not apply (it keeps a local run's jobs).")]
    public async Task The_help_says_how_a_stopped_run_continues_and_what_state_cannot_go_with(string command, string sentence)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, command, "--help");

        Assert.True(result.ExitCode == 0, result.Errors);
        // Line breaks and indentation as single spaces, so a sentence reads whole.
        Assert.Contains(sentence, string.Join(' ', result.Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    /// <summary>
    /// Bad --seed values were reported under the library's option names (SeedNodes, InsecureLoopback, ListenHost), which
    /// the user never typed; each now names the option given.
    /// Failed before: "actorqueue: SeedNodes must be HOST:PORT with a port in 1..65535, got '127.0.0.1:abc'; ...".
    /// </summary>
    [Theory]
    [InlineData("node --seed 127.0.0.1:abc --insecure-loopback", "actorqueue: --seed must be HOST:PORT with a port in 1..65535, got '127.0.0.1:abc'; see 'actorqueue --help'")]
    [InlineData("node --seed 127.0.0.1 --insecure-loopback", "actorqueue: --seed must be HOST:PORT with a port in 1..65535, got '127.0.0.1'; see 'actorqueue --help'")]
    [InlineData("node --seed 10.1.2.3:4053 --insecure-loopback", "actorqueue: --seed 10.1.2.3:4053: '10.1.2.3' is not a loopback address, and a node with --insecure-loopback (no authentication) joins loopback seeds only; see 'actorqueue --help'")]
    [InlineData("node --seed 127.0.0.1:4053 --listen 10.1.2.3:4054 --insecure-loopback", "actorqueue: --listen 10.1.2.3:4054: '10.1.2.3' is not a loopback address, and --insecure-loopback (no authentication) runs on loopback only; see 'actorqueue --help'")]
    [InlineData("run - --cluster --listen 10.1.2.3:4053 --insecure-loopback", "actorqueue: --listen 10.1.2.3:4053: '10.1.2.3' is not a loopback address, and --insecure-loopback (no authentication) runs on loopback only; see 'actorqueue --help'")]
    public async Task A_bad_seed_or_listen_names_the_option_typed(string command, string error)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "echo never\n", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        Assert.Equal(error + "\n", result.Errors);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// A --seed or --listen whose host is no host (two seeds joined by a comma, an IPv6 address without brackets, a
    /// non-ASCII space) passed the port's check and crashed the node as it started: an unhandled UriFormatException (exit 134) for
    /// a node, a failed bind and an abort for a coordinator. Each is now a one-line usage error.
    /// Failed before: "Unhandled exception. System.UriFormatException: Invalid URI: Invalid port specified." (exit 134).
    /// </summary>
    [Theory]
    [InlineData("node --seed 127.0.0.1:4053,127.0.0.1:4054 --cert-dir {worker}", "--seed", "127.0.0.1:4053,127.0.0.1:4054")]
    [InlineData("node --seed ::1:4053 --cert-dir {worker}", "--seed", "::1:4053")]
    [InlineData("node --seed 127.0.0.1:4053 --listen 127.0.0.1:1:4054 --cert-dir {worker}", "--listen", "127.0.0.1:1:4054")]
    [InlineData("run - --cluster --allow-remote --listen a\u00a0b:4053 --cert-dir {coordinator}", "--listen", "a\u00a0b:4053")]
    [InlineData("run - --cluster --allow-remote --listen 127.0.0.1:1:4053 --cert-dir {coordinator}", "--listen", "127.0.0.1:1:4053")]
    public async Task A_seed_or_listen_whose_host_is_no_host_is_a_usage_error(string command, string option, string value)
    {
        var args = command.Replace("{worker}", certificates.Worker).Replace("{coordinator}", certificates.Coordinator).Split(' ');

        var result = await CliProcess.RunAsync(_scratch.Dir, "echo never\n", args);

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {option} must be HOST:PORT with a host name or IP address (IPv6 in brackets, like [::1]:4053), got '{value}'; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// An -a (--arg-file) file that cannot be read was reported as ":::: cannot read", an option the user did not type;
    /// it now names the option given (a :::: source still says ::::).
    /// Failed before: "actorqueue: :::: cannot read 'missing.txt': ...".
    /// </summary>
    [Theory]
    [InlineData("-a")]
    [InlineData("--arg-file")]
    public async Task An_unreadable_arg_file_names_the_option_typed(string option)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", option, "missing.txt", "echo");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith($"actorqueue: {option} cannot read 'missing.txt': Could not find file", result.Errors, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// A job killed by a signal that the runner did not send (here its own <c>kill -9 $$</c>; an OOM kill is the same):
    /// .NET's Process reports such a child's wait status as 128 + the signal, exactly what <c>exit 137</c> gives, and
    /// nothing else tells the two apart, so both are recorded as a shell reports them (Exitval 137, Signal 0) rather
    /// than guessed; the failure line says it may have been either. A kill the runner sent itself (the timeout) is known,
    /// and recorded as GNU parallel does (-1, 9).
    /// Failed before: the line said only "exited with 137", of a job that a signal killed.
    /// </summary>
    [Fact]
    public async Task The_joblog_records_a_signal_only_when_the_runner_sent_it()
    {
        var jobs = _scratch.Write("jobs.txt", "kill -9 $$", "exit 137", "kill -TERM $$", "exec sleep 60");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "4", "-q", "--timeout", "1s", "--joblog", "log.tsv");

        Assert.True(result.ExitCode == 4, result.Errors);
        var records = _scratch.ReadJobLog().OrderBy(r => r.Seq).Select(r => (r.Seq, r.Exit, r.Signal)).ToList();
        Assert.Equal([(1, 137, 0), (2, 137, 0), (3, 143, 0), (4, -1, 9)], records);
        Assert.Contains("actorqueue: job 1 failed: exited with 137 (or was killed by signal 9, which gives the same status): kill -9 $$", result.Errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue: job 2 failed: exited with 137 (or was killed by signal 9, which gives the same status): exit 137", result.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// --log on something other than a regular file: /dev/stderr (which the usage error for <c>--log -</c> suggests) with
    /// standard error a pipe, and a FIFO that <c>cat</c> reads. Serilog's file sink counts a file's bytes against its
    /// 1 GB default limit from the stream's length, which a pipe does not have, so it never opened: every event was lost
    /// (the run said so once). Without the limit (which also stopped a long run's log silently at 1 GB) both work.
    /// Failed before: "actorqueue: --log: cannot write '/dev/stderr', some log events are lost (the run goes on): ...
    /// unable to open file sink for /dev/stderr", and no event reached either.
    /// </summary>
    [Fact]
    public async Task A_log_on_a_pipe_receives_the_events()
    {
        var toStderr = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--log", "/dev/stderr", "echo", ":::", "a");

        Assert.True(toStderr.ExitCode == 0, toStderr.Errors);
        Assert.Equal("a\n", toStderr.Output);
        Assert.DoesNotContain("cannot write", toStderr.Errors, StringComparison.Ordinal);
        Assert.Contains(JobEvent, toStderr.Errors, StringComparison.Ordinal);

        var fifo = _scratch.PathOf("log.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var start = new ProcessStartInfo("cat") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(fifo);
        using var reader = Process.Start(start)!;
        try
        {
            var read = reader.StandardOutput.ReadToEndAsync();
            var toFifo = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--log", fifo, "echo", ":::", "a");

            Assert.True(toFifo.ExitCode == 0, toFifo.Errors);
            Assert.Equal("", toFifo.Errors);
            Assert.Contains(JobEvent, await read.WaitAsync(TimeSpan.FromSeconds(60)), StringComparison.Ordinal);
        }
        finally
        {
            if (!reader.HasExited)
            {
                reader.Kill();
            }
        }
    }

    /// <summary>The start of a finished job's event in compact JSON.</summary>
    private const string JobEvent = "\"@mt\":\"Job {JobId} (seq {Seq}) {Outcome} with exit {ExitCode}";

    /// <summary>
    /// The coordinator's cluster node stops under a run with no joblog: the line said the jobs it had not run "are not
    /// logged", of a run that logs nothing. Without a joblog nothing records them: they count as not started.
    /// Failed before: the line ended "jobs not run (or whose outcome is unknown) are not logged".
    /// </summary>
    [Fact]
    public async Task The_cluster_loss_line_without_a_joblog_names_no_log()
    {
        var errors = await LoseTheClusterAsync([.. Enumerable.Range(1, 4).Select(i => $"touch {_scratch.PathOf($"started-{i}")}; sleep 120")], 1);

        var line = Assert.Single(errors.Split('\n'), l => l.StartsWith("actorqueue: the coordinator's cluster node stopped (", StringComparison.Ordinal));
        Assert.EndsWith("): no new jobs start; jobs not run (or whose outcome is unknown) count as not started", line, StringComparison.Ordinal);
        Assert.DoesNotContain("logged", errors, StringComparison.Ordinal);
        Assert.DoesNotContain("--resume", errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// The same loss after --halt-on-failure had stopped the run (a job failed while another ran): the stop is said once,
    /// whoever stops first, so the loss said nothing, and the run exited 255 with no word of why.
    /// Failed before: no line "actorqueue: the coordinator's cluster node stopped (...)" (Assert.Single: no match).
    /// </summary>
    [Fact]
    public async Task The_cluster_loss_is_said_after_a_halt_stopped_the_run()
    {
        var errors = await LoseTheClusterAsync([$"touch {_scratch.PathOf("started-1")}; sleep 120", "false"], 2, "--halt-on-failure: no new jobs start", "--halt-on-failure");

        Assert.Single(errors.Split('\n'), l => l.StartsWith("actorqueue: --halt-on-failure: no new jobs start", StringComparison.Ordinal));
        var line = Assert.Single(errors.Split('\n'), l => l.StartsWith("actorqueue: the coordinator's cluster node stopped (", StringComparison.Ordinal));
        Assert.EndsWith("): no new jobs start; jobs not run (or whose outcome is unknown) count as not started", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// Starts a coordinator (no joblog, with <paramref name="options"/>) and one worker node running
    /// <paramref name="slots"/> jobs at once, waits for a job to start (and <paramref name="said"/>, if given), kills the
    /// node and answers the coordinator's reconnection with a plain TCP listener on the node's port (no TLS): the
    /// handshake fails and Akka shuts the coordinator's actor system down, as ClusterCoordinatorLossTests does. Returns
    /// the run's stderr.
    /// </summary>
    private async Task<string> LoseTheClusterAsync(string[] lines, int slots, string? said = null, params string[] options)
    {
        var jobs = _scratch.Write("jobs.txt", lines);
        var coordinatorListen = $"127.0.0.1:{TestPorts.Free()}";
        var nodePort = TestPorts.Free();
        using var run = new RunningCli(_scratch.Dir, ["run", jobs, "-j", "4", .. options, "--cluster", "--listen", coordinatorListen, "--cert-dir", certificates.Coordinator]);
        await run.WaitForErrorsAsync("waiting for 1 worker node(s)"); // a node started first is refused, and joins at its next attempt (every 5 s)
        using var node = new RunningCli(_scratch.Dir, "node", "--seed", coordinatorListen, "--listen", $"127.0.0.1:{nodePort}", "-j", $"{slots}",
            "--cert-dir", certificates.Worker);
        await Poll.UntilAsync(() => Directory.GetFiles(_scratch.Dir, "started-*").Length > 0, ClusterNodes.StepTimeout, () => $"a job started:\n{run.Errors}\n{node.Errors}");
        if (said is not null)
        {
            await run.WaitForErrorsAsync(said);
        }

        await CliProcess.SignalAsync(node.Pid, "KILL");
        await using var impostor = await PlainListener.StartAsync(nodePort);
        var exit = await run.ExitAsync(TimeSpan.FromSeconds(120));
        Assert.True(exit == 255, $"a run stopped by its own failure (its cluster lost) exits 255, got {exit}: {run.Errors}");
        return run.Errors;
    }
}
