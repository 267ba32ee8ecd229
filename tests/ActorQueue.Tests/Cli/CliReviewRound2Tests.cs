namespace ActorQueue.Tests.Cli;

/// <summary>
/// The second adversarial review of the CLI (helper 93): each of these failed before its fix — an empty
/// <c>--opt=</c> took the next word (the job file was truncated into a joblog), the command's own flags before
/// <c>:::</c> were read as the runner's, two runs shared one joblog (the second truncated the first's records), a
/// timed-out job halted the run with 137 (parallel: 255), <c>--joblog -q</c> wrote a joblog named -q, and a
/// repeated JSONL <c>env</c> key was taken silently.
/// </summary>
public sealed class CliReviewRound2Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>Before: <c>run --joblog= jobs.txt</c> made jobs.txt the joblog (0 jobs, exit 0, the job file overwritten with a header).</summary>
    [Theory]
    [InlineData("--joblog=")]
    [InlineData("--results=")]
    [InlineData("--timeout=")]
    public async Task An_option_with_an_empty_value_after_its_equals_sign_is_a_usage_error_and_touches_nothing(string option)
    {
        var jobs = _scratch.Write("myjobs.txt", "echo a", "echo b");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", option, "myjobs.txt");

        Assert.Equal(255, result.ExitCode);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"{option[..^1]} needs a value, got ''", line, StringComparison.Ordinal);
        Assert.Equal("echo a\necho b\n", File.ReadAllText(jobs));
        Assert.Equal("", result.Output);
    }

    /// <summary>Before: <c>echo -n</c> was refused as the runner's unknown option <c>-n</c> (255), and <c>echo --tag</c> tagged the runner's output.</summary>
    [Fact]
    public async Task With_input_sources_the_commands_own_flags_stay_the_commands()
    {
        var noNewline = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-k", "echo", "-n", ":::", "a", "b");
        var tagWord = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-j", "1", "echo", "--tag", "-j", "2", ":::", "x");

        Assert.True(noNewline.ExitCode == 0, noNewline.Errors);
        Assert.Equal("ab", noNewline.Output);
        Assert.True(tagWord.ExitCode == 0, tagWord.Errors);
        Assert.Equal("--tag -j 2 x\n", tagWord.Output);
    }

    /// <summary>Before: the second run opened the joblog too and truncated it, so the first run's records were lost.</summary>
    [Fact]
    public async Task A_second_run_on_a_joblog_in_use_is_refused_and_the_first_runs_records_stay()
    {
        var go = _scratch.PathOf("go");
        var started = _scratch.PathOf("started");
        using var first = new RunningCli(_scratch.Dir, "run", "-q", "--joblog", "shared.log", ":::", "echo one",
            $"touch '{started}'; while [ ! -f '{go}' ]; do sleep 0.02; done; echo two");
        await Poll.UntilAsync(() => File.Exists(started), TimeSpan.FromSeconds(30), "the first run's second job started");

        var second = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--joblog", "shared.log", ":::", "echo X");
        File.WriteAllText(go, "");
        var firstExit = await first.ExitAsync();

        Assert.Equal(255, second.ExitCode);
        Assert.Contains("--joblog: cannot write 'shared.log'", second.Errors, StringComparison.Ordinal);
        Assert.Equal(0, firstExit);
        var commands = File.ReadAllLines(_scratch.PathOf("shared.log")).Skip(1).Select(line => line.Split('\t')[^1]).Order().ToList();
        Assert.Equal(2, commands.Count);
        Assert.Equal("echo one", commands[0]);
        Assert.DoesNotContain(commands, command => command == "echo X");
    }

    /// <summary>Before: the last value of a repeated <c>env</c> key won, though README says a repeated key fails with its line number.</summary>
    [Fact]
    public async Task A_repeated_env_key_fails_its_job_with_the_line_number()
    {
        _scratch.Write("e.jsonl", """{"cmd":"echo $X","env":{"X":"a","X":"b"}}""");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--jsonl", "e.jsonl");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("line 1: \"env\" key X is given twice", result.Errors, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
    }

    /// <summary>Before: 137 (128 + SIGKILL); GNU parallel exits 255 for a timed-out job (its exit value -1).</summary>
    [Fact]
    public async Task Halting_on_a_timed_out_job_exits_255_as_parallel()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "--timeout", "200ms", "--halt", "now,fail=1", ":::", "sleep 30");

        Assert.Equal(255, result.ExitCode);
    }

    /// <summary>Before: a joblog named <c>-q</c> was written and the run was not quiet.</summary>
    [Fact]
    public async Task A_file_option_given_a_short_option_as_its_value_is_a_usage_error()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--joblog", "-q", ":::", "echo a");

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("--joblog needs a value", result.Errors, StringComparison.Ordinal);
        Assert.False(File.Exists(_scratch.PathOf("-q")), "a joblog named -q was written");
    }
}
