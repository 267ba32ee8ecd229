namespace ActorQueue.Tests.Cli;

/// <summary>
/// <c>run --state</c>'s refusals (another input, a bad file, a clashing option: one line, exit 255, no job run) and
/// <c>dead-letters</c>: list, requeue for the next run, purge.
/// </summary>
public sealed class RunStateTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>Jobs that each leave a marker file when they run: job N touches ran-N (appending, to count runs).</summary>
    private string Jobs(params string[] words) =>
        _scratch.Write("jobs.txt", [.. words.Select((word, i) => $"echo x >> ran-{i + 1}; echo {word}")]);

    private int Runs(int seq) => File.Exists(_scratch.PathOf($"ran-{seq}")) ? File.ReadAllLines(_scratch.PathOf($"ran-{seq}")).Length : 0;

    private Task<CliResult> RunAsync(params string[] args) => CliProcess.RunAsync(_scratch.Dir, null, args);

    private static void AssertOneLineRefusal(CliResult result, params string[] naming)
    {
        Assert.Equal(255, result.ExitCode);
        var lines = result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"one line on stderr, got:\n{result.Errors}");
        Assert.All(naming, text => Assert.Contains(text, lines[0], StringComparison.Ordinal));
        Assert.Equal("", result.Output);
    }

    [Fact]
    public async Task A_restart_whose_input_gives_another_command_for_a_recorded_job_is_refused_before_any_job_runs()
    {
        await RunAsync("run", Jobs("one", "two"), "--state", "state.db", "-q");
        var changed = _scratch.Write("jobs.txt", "echo x >> ran-1; echo one", "echo x >> ran-2; echo TWO", "echo x >> ran-3; echo three");

        var result = await RunAsync("run", changed, "--state", "state.db", "-q");

        AssertOneLineRefusal(result, "--state", "state.db", "job 2", "echo TWO");
        Assert.Equal((1, 1, 0), (Runs(1), Runs(2), Runs(3)));
    }

    [Fact]
    public async Task A_restart_whose_input_ends_before_the_recorded_jobs_is_refused()
    {
        await RunAsync("run", Jobs("one", "two", "three"), "--state", "state.db", "-q");
        var shorter = _scratch.Write("jobs.txt", "echo x >> ran-1; echo one");

        var result = await RunAsync("run", shorter, "--state", "state.db", "-q");

        AssertOneLineRefusal(result, "--state", "up to job 3", "ends after job 1");
    }

    [Fact]
    public async Task A_restart_with_more_jobs_runs_only_the_new_ones()
    {
        await RunAsync("run", Jobs("one", "two"), "--state", "state.db", "-q");

        var result = await RunAsync("run", Jobs("one", "two", "three"), "--state", "state.db", "-q");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("three\n", result.Output);
        Assert.Equal((1, 1, 1), (Runs(1), Runs(2), Runs(3)));
    }

    [Fact]
    public async Task A_corrupt_state_file_is_refused_with_one_line_and_no_job_runs()
    {
        File.WriteAllBytes(_scratch.PathOf("state.db"), [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 31))]);

        var result = await RunAsync("run", Jobs("one"), "--state", "state.db", "-q");

        AssertOneLineRefusal(result, "--state", "state.db");
        Assert.Equal(0, Runs(1));
    }

    [Theory]
    [InlineData("missing-dir/state.db")]
    [InlineData(".")]
    public async Task A_state_file_that_cannot_be_created_is_refused_with_one_line(string path)
    {
        var result = await RunAsync("run", Jobs("one"), "--state", path, "-q");

        AssertOneLineRefusal(result, "--state", $"'{path}'");
        Assert.Equal(0, Runs(1));
    }

    [Theory]
    [InlineData("--resume", "--joblog", "log.tsv")]
    [InlineData("--resume-failed", "--joblog", "log.tsv")]
    [InlineData("--joblog", "state.db")]
    public async Task State_with_a_clashing_option_is_a_usage_error(params string[] clash)
    {
        var result = await RunAsync(["run", Jobs("one"), "--state", "state.db", .. clash]);

        AssertOneLineRefusal(result, "--state");
        Assert.Equal(0, Runs(1));
    }

    [Fact]
    public async Task Dead_letters_lists_the_jobs_that_failed_after_their_retries()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one", "echo two >&2; exit 4", "echo three");
        var run = await RunAsync("run", jobs, "--state", "state.db", "--retries", "1", "-q");
        Assert.Equal(1, run.ExitCode);

        var list = await RunAsync("dead-letters", "--state", "state.db", "list");

        Assert.Equal(0, list.ExitCode);
        Assert.Equal("Seq\tAttempts\tExitval\tSignal\tError\tCommand\n2\t2\t4\t0\texited with 4\techo two >&2; exit 4\n", list.Output);
        Assert.Equal(list.Output, (await RunAsync("dead-letters", "--state", "state.db")).Output); // list is the default
    }

    [Fact]
    public async Task Requeued_dead_letters_run_again_in_the_next_run_and_nothing_else_does()
    {
        var jobs = _scratch.Write("jobs.txt", "echo x >> ran-1", "echo x >> ran-2; test -f fixed || exit 3; echo two", "echo x >> ran-3");
        Assert.Equal(1, (await RunAsync("run", jobs, "--state", "state.db", "-q")).ExitCode);
        File.WriteAllText(_scratch.PathOf("fixed"), "");

        var requeue = await RunAsync("dead-letters", "--state", "state.db", "requeue", "2");
        var rerun = await RunAsync("run", jobs, "--state", "state.db", "-q");

        Assert.Equal(0, requeue.ExitCode);
        Assert.Contains("requeued 1", requeue.Errors, StringComparison.Ordinal);
        Assert.Equal((0, "two\n"), (rerun.ExitCode, rerun.Output));
        Assert.Equal((1, 2, 1), (Runs(1), Runs(2), Runs(3)));
        Assert.Equal(DeadLettersHeader, (await RunAsync("dead-letters", "--state", "state.db", "list")).Output);
    }

    /// <summary>A job number that is no dead letter is a mistake to say, not "requeued 0": nothing changes.</summary>
    [Theory]
    [InlineData("requeue", "99")]
    [InlineData("requeue", "2 99")]
    [InlineData("requeue", "1")]
    [InlineData("purge", "99")]
    public async Task Dead_letters_refuses_a_job_number_that_is_not_a_dead_letter(string action, string seqs)
    {
        var jobs = _scratch.Write("jobs.txt", "echo one", "exit 4");
        Assert.Equal(1, (await RunAsync("run", jobs, "--state", "state.db", "-q")).ExitCode);
        var before = (await RunAsync("dead-letters", "--state", "state.db", "list")).Output;

        var result = await RunAsync(["dead-letters", "--state", "state.db", action, .. seqs.Split(' ')]);

        AssertOneLineRefusal(result, $"job {seqs.Split(' ')[^1]} is not a dead letter");
        Assert.Equal(before, (await RunAsync("dead-letters", "--state", "state.db", "list")).Output);
    }

    [Fact]
    public async Task Purged_dead_letters_are_gone_and_their_jobs_stay_finished()
    {
        var jobs = _scratch.Write("jobs.txt", "echo x >> ran-1; exit 3", "echo x >> ran-2; exit 5");
        await RunAsync("run", jobs, "--state", "state.db", "-q");

        var purge = await RunAsync("dead-letters", "--state", "state.db", "purge", "1");
        var list = await RunAsync("dead-letters", "--state", "state.db", "list");
        var rerun = await RunAsync("run", jobs, "--state", "state.db", "-q");

        Assert.Equal(0, purge.ExitCode);
        Assert.Equal(DeadLettersHeader + "2\t1\t5\t0\texited with 5\techo x >> ran-2; exit 5\n", list.Output);
        Assert.Equal(0, rerun.ExitCode);
        Assert.Equal((1, 1), (Runs(1), Runs(2)));
    }

    [Theory]
    [InlineData("missing.db", "list")]
    [InlineData("state.db", "list", "x")]
    [InlineData("state.db", "frobnicate")]
    public async Task Dead_letters_with_a_bad_file_or_argument_is_a_usage_error(params string[] args)
    {
        await RunAsync("run", Jobs("one"), "--state", "state.db", "-q");

        var result = await RunAsync(["dead-letters", "--state", .. args]);

        Assert.Equal(255, result.ExitCode);
        Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_second_process_on_a_state_file_in_use_is_refused_with_one_line_naming_the_file_before_any_job_runs()
    {
        var jobs = HeldJobs("one", "two");
        using var first = new RunningCli(_scratch.Dir, "run", jobs, "--state", "state.db", "-q", "-j", "1");
        await Poll.UntilAsync(() => Runs(1) == 1, TimeSpan.FromSeconds(60), () => $"job 1 started: {first.Errors}", CliScratch.Tick);

        using var second = new RunningCli(_scratch.Dir, "run", jobs, "--state", "state.db", "-q", "-j", "1");
        // A second run that is let in runs job 1 again (it is unfinished) and waits in it: either way the test goes on.
        await Poll.UntilAsync(() => !CliScratch.IsAlive(second.Pid) || Runs(1) > 1, TimeSpan.FromSeconds(60), "the second run ended or ran job 1", CliScratch.Tick);
        var deadLetters = await RunAsync("dead-letters", "--state", "state.db", "list");
        Release();
        var (secondExit, firstExit) = (await second.ExitAsync(), await first.ExitAsync());

        AssertOneLineRefusal(new CliResult(secondExit, second.Output, second.Errors), "--state", "'state.db'", "in use");
        AssertOneLineRefusal(deadLetters, "--state", "'state.db'", "in use");
        Assert.Equal(0, firstExit);
        Assert.Equal((1, 1), (Runs(1), Runs(2)));
    }

    [Fact]
    public async Task A_run_killed_with_SIGKILL_leaves_its_state_file_free_and_the_restart_runs_each_unfinished_job_once()
    {
        var jobs = HeldJobs("one", "two", "three");
        using (var killed = new RunningCli(_scratch.Dir, "run", jobs, "--state", "state.db", "-q", "-j", "1"))
        {
            await Poll.UntilAsync(() => Runs(1) == 1, TimeSpan.FromSeconds(60), () => $"job 1 started: {killed.Errors}", CliScratch.Tick);
            await CliProcess.SignalAsync(killed.Pid, "KILL");
            await killed.ExitAsync();
        }

        Release(); // job 1 of the killed run goes on in its own session, and ends now
        var restarted = await RunAsync("run", jobs, "--state", "state.db", "-q", "-j", "1");

        Assert.Equal((0, ""), (restarted.ExitCode, restarted.Errors));
        Assert.Equal((2, 1, 1), (Runs(1), Runs(2), Runs(3)));
    }

    /// <summary>Like <see cref="Jobs"/>, but job 1 waits for a file named <c>release</c> (<see cref="Release"/>) after it marks its run.</summary>
    private string HeldJobs(params string[] words) =>
        _scratch.Write("jobs.txt", [.. words.Select((word, i) =>
            $"echo x >> ran-{i + 1}; {(i == 0 ? "while [ ! -f release ]; do sleep 0.01; done; " : "")}echo {word}")]);

    private void Release() => File.WriteAllText(_scratch.PathOf("release"), "");

    private const string DeadLettersHeader = "Seq\tAttempts\tExitval\tSignal\tError\tCommand\n";
}
