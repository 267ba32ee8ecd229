namespace ActorQueue.Tests.Cli;

/// <summary>
/// Lines no well-formed job has (lone surrogate escapes, lines longer than any command line, trailing spaces): each is
/// a failed job named by its line number or runs exactly as written, and the run goes on.
/// </summary>
public sealed class JobLineTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_lone_surrogate_escape_anywhere_in_a_jsonl_line_fails_that_line_and_the_run_goes_on()
    {
        var input = string.Join('\n',
            """{"cmd": "echo x", "id": "\ud800"}""",
            """{"cmd": "echo \udc00"}""",
            """{"cmd": "echo x", "tags": ["\ud800"]}""",
            """{"cmd": "echo x", "env": {"\ud800": "v"}}""",
            """{"cmd": "echo x", "env": {"A": "\ud800"}}""",
            """{"cmd": "echo x", "\ud800": 1}""",
            """{"cmd": "echo x", "timeout": "\ud800"}""",
            """{"cmd": "echo after"}""") + "\n";

        var result = await CliProcess.RunAsync(_scratch.Dir, input, "run", "-", "--jsonl", "-q", "--joblog", _scratch.PathOf("log.tsv"));

        Assert.True(result.ExitCode == 7, result.Errors);
        Assert.Equal("after\n", result.Output);
        var errors = result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in Enumerable.Range(1, 7))
        {
            Assert.Single(errors, e => e.StartsWith($"actorqueue: line {line}: ", StringComparison.Ordinal) && e.EndsWith("the job is counted as failed", StringComparison.Ordinal));
        }

        Assert.Equal([8L], _scratch.ReadJobLog().Select(l => l.Seq));
    }

    [Fact]
    public async Task A_line_runs_exactly_as_written_without_trimming_its_trailing_spaces()
    {
        byte[] input = [.. "echo trailing\\ \n"u8, .. "printf '%s|' a\u00a0\n"u8, .. "   \n"u8, .. "  # a comment\n"u8];

        var result = await CliProcess.RunAsync(CliProcess.StartInfo(_scratch.Dir, "run", "-", "-q", "-j", "1"), input);

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("trailing \na\u00a0|", result.Output);
    }

    [Fact]
    public async Task A_line_longer_than_1_MiB_fails_with_its_line_number_and_the_next_line_runs()
    {
        byte[] input = [.. "echo before\n"u8, .. Enumerable.Repeat((byte)'x', (1 << 20) + 1), .. "\necho after\n"u8];

        var result = await CliProcess.RunAsync(CliProcess.StartInfo(_scratch.Dir, "run", "-", "-q", "-j", "1"), input);

        Assert.True(result.ExitCode == 1, result.Errors);
        Assert.Equal("before\nafter\n", result.Output);
        var error = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("actorqueue: line 2: the line is longer than 1 MiB", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_joblog_with_a_line_longer_than_1_MiB_is_a_usage_error()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one");
        File.WriteAllText(_scratch.PathOf("log.tsv"), CliScratch.JobLogHeader + "\n" + new string('x', (1 << 20) + 1) + "\n");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", "log.tsv", "--resume");

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("--joblog: ", result.Errors, StringComparison.Ordinal);
        Assert.Contains("longer than 1 MiB", result.Errors, StringComparison.Ordinal);
        Assert.Equal("", result.Output);
    }
}
