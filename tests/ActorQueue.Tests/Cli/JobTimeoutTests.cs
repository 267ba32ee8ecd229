namespace ActorQueue.Tests.Cli;

/// <summary><c>--timeout</c> ends an attempt at its deadline whatever the job's descendants hold open.</summary>
public sealed class JobTimeoutTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose()
    {
        _scratch.KillRecorded("child.pid");
        _scratch.Dispose();
    }

    [Fact]
    public async Task A_timeout_ends_a_job_whose_background_child_keeps_stdout_open_and_kills_that_child()
    {
        // The shell exits at once; its background child inherits stdout and holds it open for 300 s.
        await AssertTimesOutPrintingHiAsync($"sleep 300 & echo $! > {_scratch.PathOf("child.pid")}; echo hi");

        var child = _scratch.RecordedPid("child.pid");
        await Poll.UntilAsync(() => !CliScratch.IsAlive(child), TimeSpan.FromSeconds(10), $"the job's background child {child} was killed", CliScratch.Tick);
    }

    [Fact]
    public async Task Every_job_killed_at_its_timeout_is_logged_as_timed_out_never_as_an_exit()
    {
        // Many kills at once: the killed shells' exits race with the timeouts that caused them.
        var jobs = _scratch.Write("jobs.txt", Enumerable.Range(1, 24).Select(i => $"echo {i}; sleep 60").ToArray());

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "24", "--timeout", "300ms", "--joblog", "log.tsv", "-q");

        Assert.Equal(24, result.ExitCode);
        Assert.All(_scratch.ReadJobLog(), line => Assert.Equal((-1, 9), (line.Exit, line.Signal)));
        Assert.Equal(24, _scratch.ReadJobLog().Count);
    }

    [Fact]
    public async Task A_timeout_ends_the_attempt_even_when_a_descendant_escaped_the_jobs_session_with_stdout()
    {
        // The child starts its own session and is orphaned (out of reach of the job's process group and process tree),
        // and keeps stdout open.
        await AssertTimesOutPrintingHiAsync($"(setsid sleep 300 & echo $! > {_scratch.PathOf("child.pid")}); echo hi; sleep 300");

        Assert.True(CliScratch.IsAlive(_scratch.RecordedPid("child.pid")), "the escaped child still holds the pipe: the scenario under test");
    }

    /// <summary>Runs <paramref name="command"/> with a 500 ms timeout: it fails as timed out, keeping the "hi" it printed before the deadline.</summary>
    private async Task AssertTimesOutPrintingHiAsync(string command)
    {
        var jobs = _scratch.Write("jobs.txt", command);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--timeout", "500ms", "--joblog", "log.tsv");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("actorqueue: job 1 failed: timed out after 0.5s (process group killed)", result.Errors);
        Assert.Equal("hi\n", result.Output);
        var line = Assert.Single(_scratch.ReadJobLog());
        Assert.Equal((-1, 9), (line.Exit, line.Signal));
    }
}
