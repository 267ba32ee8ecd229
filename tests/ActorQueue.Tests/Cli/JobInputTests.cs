using System.Text;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// Bad input to <c>actorqueue run</c>: a bad line is a failed job named by its line number and the run goes on; a bad
/// combination of options is a usage error before any job starts.
/// </summary>
public sealed class JobInputTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task Bad_jsonl_values_fail_their_own_line_and_the_run_goes_on()
    {
        var input = string.Join('\n',
            """{"cmd": "echo ok-1"}""",
            """{"cmd": "echo bad-2", "timeout": true}""",
            """{"cmd": "echo bad-3", "timeout": []}""",
            """{"cmd": "echo bad-4", "timeout": {}}""",
            """{"cmd": "echo bad-5", "timeout": 1e300}""",
            """{"cmd": "echo bad-6", "timeout": 5000000}""",
            """{"cmd": "echo bad-7", "timeout": "2000h"}""",
            """{"cmd": "echo bad-8", "timeout": 1e-9}""",
            """{"cmd": "echo bad-9\u0000rm -rf x"}""",
            """{"cmd": "echo bad-10", "env": {"A": "x\u0000y"}}""",
            """{"cmd": "echo bad-11", "env": {"A=B": "x"}}""",
            """{"cmd": "echo bad-12", "env": {"": "x"}}""",
            """{"cmd": "echo bad-13", "env": {"A": null}}""",
            """{"cmd": "echo bad-14", "env": {"A": {"b": 1}}}""",
            """{"cmd": "echo bad-15", "retries": 1.5}""",
            """{"cmd": "echo ok-16 $A", "timeout": 30, "env": {"A": "fine"}}""",
            """{"cmd": "echo bad-17", "id": "a\nb"}""",
            """{"cmd": "echo bad-18", "timout": 5}""",
            """{"cmd": "echo ok", "cmd": "echo bad-19"}""") + "\n";

        var result = await CliProcess.RunAsync(_scratch.Dir, input, "run", "-", "--jsonl", "-q", "--joblog", _scratch.PathOf("log.tsv"));

        Assert.Equal(17, result.ExitCode);
        Assert.Equal(["ok-1", "ok-16 fine"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        var errors = result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in Enumerable.Range(2, 14).Concat([17, 18, 19]))
        {
            Assert.Single(errors, e => e.StartsWith($"actorqueue: line {line}: ", StringComparison.Ordinal) && e.EndsWith("the job is counted as failed", StringComparison.Ordinal));
        }

        Assert.Contains(errors, e => e.StartsWith("actorqueue: line 9: \"cmd\" contains a NUL character", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("actorqueue: line 6: \"timeout\" must be", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("actorqueue: line 18: unknown key \"timout\"", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("actorqueue: line 19: \"cmd\" is given twice", StringComparison.Ordinal));
        Assert.Equal([1L, 16L], _scratch.ReadJobLog().Select(l => l.Seq).Order());
    }

    [Fact]
    public async Task A_text_line_with_a_nul_or_invalid_utf8_fails_with_its_line_number_instead_of_running_altered()
    {
        byte[] input = [.. "echo ok-1\necho caf"u8, 0xE9, .. "\necho first"u8, 0, .. "rm -rf nothing\necho ok-4\n"u8];

        var result = await CliProcess.RunAsync(CliProcess.StartInfo(_scratch.Dir, "run", "-", "-q"), input);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal(["ok-1", "ok-4"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("actorqueue: line 2: not valid UTF-8", result.Errors);
        Assert.Contains("actorqueue: line 3: the command contains a NUL character", result.Errors);
    }

    [Fact]
    public async Task Limits_that_add_up_past_int_max_still_run()
    {
        var jobs = _scratch.Write("jobs.jsonl", """{"cmd": "echo a", "tags": ["a"]}""", """{"cmd": "echo b", "tags": ["b"]}""");

        var limits = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--jsonl", "-q", "--limit", "a=2147483647", "--limit", "b=2147483647");
        var jobsAndLimit = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--jsonl", "-q", "-j", "2147483647", "--limit", "a=1", "--limit", "b=1");

        Assert.True(limits.ExitCode == 0, limits.Errors);
        Assert.True(jobsAndLimit.ExitCode == 0, jobsAndLimit.Errors);
        Assert.Equal(["a", "b"], jobsAndLimit.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_joblog_that_is_the_input_file_is_refused_and_the_input_kept()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one", "echo two");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "jobs.txt", "--joblog", jobs);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("--joblog must not be the input file", result.Errors);
        Assert.Equal(["echo one", "echo two"], File.ReadAllLines(jobs));
    }

    [Theory]
    [InlineData("jobs.txt", null)]
    [InlineData("log.tsv", "log.tsv")]
    public async Task A_log_file_that_is_the_input_or_the_joblog_is_refused(string log, string? joblog)
    {
        _scratch.Write("jobs.txt", "echo one");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, ["run", "jobs.txt", "--log", log, .. joblog is null ? Array.Empty<string>() : ["--joblog", joblog]]);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains($"--log must not be the input file or the joblog, got '{log}'", result.Errors);
        Assert.Equal(["echo one"], File.ReadAllLines(_scratch.PathOf("jobs.txt")));
    }

    [Fact]
    public async Task Resume_refuses_a_joblog_that_is_not_a_joblog_and_leaves_it_alone()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one");
        var notes = _scratch.Write("notes.txt", "my notes", "more notes");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", notes, "--resume");

        Assert.Equal(255, result.ExitCode);
        Assert.Contains($"--joblog: '{notes}' is not a joblog", result.Errors);
        Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("my notes\nmore notes\n", File.ReadAllText(notes, Encoding.UTF8));
    }

    [Fact]
    public async Task A_joblog_that_is_a_link_to_the_input_file_is_refused_and_the_input_kept()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one", "echo two");
        File.CreateSymbolicLink(_scratch.PathOf("j.log"), jobs);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "jobs.txt", "--joblog", "j.log");

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("--joblog must not be the input file", result.Errors);
        Assert.Equal(["echo one", "echo two"], File.ReadAllLines(jobs));
    }

    [Theory]
    [InlineData("--joblog")]
    [InlineData("--log")]
    public async Task A_joblog_or_log_that_is_the_file_on_stdin_is_refused_and_the_input_kept(string option)
    {
        var jobs = _scratch.Write("jobs.txt", "echo one", "echo two");
        var start = CliProcess.StartInfo(_scratch.Dir, "run", "-", option, "jobs.txt");
        start.FileName = "sh";
        start.ArgumentList.Insert(0, $"exec {CliProcess.Program} \"$@\" < jobs.txt");
        start.ArgumentList.Insert(0, "-c");
        start.ArgumentList.Insert(2, "sh");

        var result = await CliProcess.RunAsync(start, null);

        Assert.True(result.ExitCode == 255, result.Errors);
        Assert.Contains("must not be the input file", result.Errors);
        Assert.Equal(["echo one", "echo two"], File.ReadAllLines(jobs));
    }

    /// <summary>
    /// A joblog or log that is the pipe the jobs come from would feed its records back in as jobs, and the input would
    /// never end: every name of stdin is refused, before any job starts.
    /// </summary>
    [Theory]
    [InlineData("run - -j 1 --joblog /dev/stdin", "--joblog", "/dev/stdin")]
    [InlineData("run - -j 1 --joblog /dev/fd/0", "--joblog", "/dev/fd/0")]
    [InlineData("run - -j 1 --joblog /proc/self/fd/0", "--joblog", "/proc/self/fd/0")]
    [InlineData("run - -j 1 --log /dev/stdin", "--log", "/dev/stdin")]
    [InlineData("run -j 1 --joblog /dev/stdin touch :::: -", "--joblog", "/dev/stdin")]
    public async Task A_joblog_or_log_that_is_the_pipe_on_stdin_is_refused_before_any_job_starts(string args, string option, string path)
    {
        var started = _scratch.PathOf("started");
        using var cli = new RunningCli(_scratch.Dir, args.Split(' '));
        await cli.Input.WriteLineAsync(args.Contains(":::: -", StringComparison.Ordinal) ? started : $"touch {started}");
        cli.Input.Close();

        var exit = await cli.ExitAsync(TimeSpan.FromSeconds(30));

        Assert.True(exit == 255, cli.Errors);
        Assert.Equal($"actorqueue: {option} '{path}' is the job input (standard input); writing to it would make the input never end; see 'actorqueue --help'",
            Assert.Single(cli.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.False(File.Exists(started), "no job started");
        Assert.Equal("", cli.Output);
    }

    [Fact]
    public async Task A_log_sink_that_fails_never_fails_the_run_and_says_so_once()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "echo one\necho two\n", "run", "-", "-q", "--log", "/dev/full");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal(["one", "two"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries), e => e.StartsWith("actorqueue: --log: ", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", result.Errors, StringComparison.Ordinal);
    }
}
