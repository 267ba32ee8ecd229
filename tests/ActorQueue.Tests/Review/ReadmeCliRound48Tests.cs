using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 219's audit of README.md's claims about the <c>actorqueue</c> command against what it does: bad input is one
/// line naming the parameter and its value, exit 255, before anything starts, and what the run says is true.
/// </summary>
public sealed class ReadmeCliRound48Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// <c>run</c> refuses an option written <c>--joblog=</c> with nothing after the <c>=</c> (README: rather than
    /// taking the next word); the other commands took the next word as the value, so <c>cert ca --out= DIR</c> wrote a
    /// CA into DIR and <c>node --seed= HOST:PORT</c> joined HOST:PORT. Each case here ends either way: the one-line
    /// usage error must name the empty option.
    /// Failed before: "cert ca --out= ca --name x" exited 0 ("actorqueue: cluster CA 'x' valid until ..."), and
    /// "node --seed= 127.0.0.1:4000 --cert-dir missing" said "actorqueue: --cert-dir 'missing/node.pfx': no such file".
    /// Mutant tried: the check kept to <c>run</c> only (as before): every case fails.
    /// </summary>
    [Theory]
    [InlineData("--out", "cert", "ca", "--out=", "ca", "--name", "x")]
    [InlineData("--days", "cert", "ca", "--out", "ca2", "--days=", "3")]
    [InlineData("--seed", "node", "--seed=", "127.0.0.1:4000", "--cert-dir", "missing")]
    [InlineData("--listen", "node", "--seed", "127.0.0.1:4000", "--listen=", "127.0.0.1:4001", "--cert-dir", "missing")]
    [InlineData("--state", "dead-letters", "--state=", "missing.db")]
    public async Task An_empty_assignment_is_a_usage_error_in_every_command(string option, params string[] args)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, args);

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {option} needs a value, got ''; see 'actorqueue --help'\n", result.Errors);
        Assert.False(Directory.Exists(_scratch.PathOf("ca")), "no CA was written");
        Assert.False(Directory.Exists(_scratch.PathOf("ca2")), "no CA was written");
    }

    /// <summary>
    /// README: keep <c>ca.key</c> off the nodes. <c>cert node --out</c> naming the CA's own directory wrote the node's
    /// files beside <c>ca.key</c>, a directory made to be copied to a node as its <c>--cert-dir</c>.
    /// Failed before: exit 0, "actorqueue: node certificate 'n' valid until ...: ca/node.pfx ... and ca.crt in ca".
    /// Mutant tried: the check on <c>ca.crt</c> instead of <c>ca.key</c> (a node's own directory holds one): the
    /// second node certificate into an existing node directory (same CA) is then refused, and the last assert fails.
    /// </summary>
    [Fact]
    public async Task A_node_certificate_is_not_written_beside_the_ca_key()
    {
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, null, "cert", "ca", "--out", "ca")).ExitCode);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "cert", "node", "--ca", "ca", "--name", "n", "--out", "ca");

        Assert.Equal(255, result.ExitCode);
        Assert.Equal("actorqueue: --out 'ca' holds the CA's private key ca.key, and a node's directory goes to the node: give another DIR; see 'actorqueue --help'\n", result.Errors);
        Assert.False(File.Exists(_scratch.PathOf(Path.Combine("ca", "node.pfx"))));
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, null, "cert", "node", "--ca", "ca", "--name", "n", "--out", "n")).ExitCode);
        File.Delete(_scratch.PathOf(Path.Combine("n", "node.pfx")));
        File.Delete(_scratch.PathOf(Path.Combine("n", "node.crt")));
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, null, "cert", "node", "--ca", "ca", "--name", "n2", "--out", "n")).ExitCode);
    }

    /// <summary>
    /// README counts <c>/dev/null</c> as no file (a joblog there is not stdout's file), but <c>--joblog /dev/null</c> was
    /// a usage error: a new joblog is truncated, and truncating a device fails. It also took the joblog's record lock,
    /// which on a device would refuse a second run with <c>--joblog /dev/null</c>, as if it wrote the same joblog.
    /// Failed before: "actorqueue: --joblog: cannot write '/dev/null': Invalid argument : '/dev/null'; see 'actorqueue --help'".
    /// Mutant tried: skipping only the truncation (the lock still taken on the device): the second run is refused
    /// ("another run is writing it") and the test fails.
    /// </summary>
    [Fact]
    public async Task Two_runs_can_each_log_to_dev_null()
    {
        var started = _scratch.PathOf("started");
        var go = _scratch.PathOf("go");
        var jobs = _scratch.Write("jobs.txt", $"touch {started}; while [ ! -e {go} ]; do sleep 0.02; done; echo first");
        using var first = new RunningCli(_scratch.Dir, "run", jobs, "--joblog", "/dev/null");
        await Poll.UntilAsync(() => File.Exists(started), TimeSpan.FromSeconds(60), () => $"job 1 started:\n{first.Errors}", CliScratch.Tick);

        var second = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--joblog", "/dev/null", "echo", ":::", "second");
        await File.WriteAllTextAsync(go, "");

        Assert.True(second.ExitCode == 0, second.Errors);
        Assert.Equal("second\n", second.Output);
        Assert.Equal(0, await first.ExitAsync(TimeSpan.FromSeconds(60)));
    }

    /// <summary>
    /// <c>--resume</c> reads the joblog back; a device, as a pipe, cannot give back what was written to it: the one-line
    /// usage error a pipe gets, before any job starts.
    /// Failed before: "actorqueue: --joblog: cannot write '/dev/null': Invalid argument : '/dev/null'; see 'actorqueue --help'".
    /// </summary>
    [Fact]
    public async Task Resume_from_dev_null_is_the_usage_error_of_a_pipe()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "--joblog", "/dev/null", "--resume", "echo", ":::", "a");

        Assert.Equal(255, result.ExitCode);
        Assert.Equal("actorqueue: --joblog: '/dev/null' is not a regular file, so the jobs it records cannot be read back to go on where the run stopped; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal("", result.Output);
    }

    /// <summary>
    /// A restart of a <c>--state</c> run without a joblog skips the jobs the state file records as finished; the
    /// summary said they were "already in the joblog", a joblog the run does not have.
    /// Failed before: the summary ended "; 2 skipped (already in the joblog)".
    /// Mutant tried: the joblog wording whatever the mode: fails.
    /// </summary>
    [Fact]
    public async Task A_state_restart_says_the_state_file_records_the_skipped_jobs()
    {
        var jobs = _scratch.Write("jobs.txt", "echo 1", "echo 2");
        var first = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--state", "run.db");
        Assert.Equal(0, first.ExitCode);

        var again = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--state", "run.db");

        Assert.Equal(0, again.ExitCode);
        Assert.Equal("", again.Output);
        Assert.Contains("; 2 skipped (finished, as --state records)", again.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("joblog", again.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// The joblog's wording stays for <c>--resume</c>.
    /// </summary>
    [Fact]
    public async Task A_resumed_run_says_the_joblog_records_the_skipped_jobs()
    {
        var jobs = _scratch.Write("jobs.txt", "echo 1", "echo 2");
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", "log.tsv")).ExitCode);

        var again = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", "log.tsv", "--resume");

        Assert.Equal(0, again.ExitCode);
        Assert.Contains("; 2 skipped (already in the joblog)", again.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// A directory given where a file is read or written (<c>actorqueue run examples</c>, <c>--joblog /tmp</c>): .NET
    /// reports it as "Access to the path '...' is denied", which sends a user to chmod (and is false for root).
    /// Failed before: "actorqueue: cannot read '.../dir': Access to the path '.../dir' is denied; see 'actorqueue --help'".
    /// Mutant tried: the .NET message kept: every case fails.
    /// </summary>
    [Theory]
    [InlineData("cannot read '{0}': it is a directory", "run", "{0}")]
    [InlineData(":::: cannot read '{0}': it is a directory", "run", "echo", "::::", "{0}")]
    [InlineData("-a cannot read '{0}': it is a directory", "run", "-a", "{0}", "echo")]
    [InlineData("--joblog: cannot write '{0}': it is a directory", "run", "--joblog", "{0}", "echo", ":::", "a")]
    [InlineData("--log: cannot write '{0}': it is a directory", "run", "--log", "{0}", "echo", ":::", "a")]
    public async Task A_directory_where_a_file_goes_is_named_as_one(string said, params string[] args)
    {
        var dir = Directory.CreateDirectory(_scratch.PathOf("dir")).FullName;

        var result = await CliProcess.RunAsync(_scratch.Dir, null, [.. args.Select(a => string.Format(System.Globalization.CultureInfo.InvariantCulture, a, dir))]);

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {string.Format(System.Globalization.CultureInfo.InvariantCulture, said, dir)}; see 'actorqueue --help'\n", result.Errors);
        Assert.Equal("", result.Output);
    }
}
