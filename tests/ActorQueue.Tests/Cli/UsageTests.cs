namespace ActorQueue.Tests.Cli;

/// <summary>Each command's <c>--help</c>, and usage errors that name the right option in one plain line.</summary>
public sealed class UsageTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData("run")]
    [InlineData("node")]
    [InlineData("cert")]
    public async Task A_commands_help_prints_the_usage_and_exits_0(string command)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, command, "--help");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Contains("Usage:", result.Output, StringComparison.Ordinal);
        Assert.Equal("", result.Errors);
    }

    /// <summary>The help says what every exit status means, as the runner returns them (see RunSignalTests for 130).</summary>
    [Fact]
    public async Task Run_help_says_what_each_exit_status_means()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "--help");

        Assert.True(result.ExitCode == 0, result.Errors);
        var help = string.Join(' ', result.Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Exit status: 0 when every job succeeded; 1-100 the number of failed jobs, 101 more than 100", help, StringComparison.Ordinal);
        Assert.Contains("130 when the run was interrupted (Ctrl-C, SIGTERM, SIGHUP or SIGQUIT), however many jobs failed", help, StringComparison.Ordinal);
        Assert.Contains("255 for usage errors and for a run stopped by its own failure", help, StringComparison.Ordinal);
        Assert.Contains("or its cluster was lost", help, StringComparison.Ordinal);
    }

    /// <summary>A reason that .NET ends with a full stop ("Could not find file '...'.") is not followed by ".; see".</summary>
    [Theory]
    [InlineData("run missing.txt", "cannot read 'missing.txt': Could not find file")]
    [InlineData("run - --joblog nowhere/log.tsv", "--joblog: cannot write 'nowhere/log.tsv': its directory 'nowhere' does not exist")]
    [InlineData("run true :::: missing.txt", ":::: cannot read 'missing.txt': Could not find file")]
    public async Task A_usage_error_whose_reason_ends_a_sentence_has_no_doubled_punctuation(string command, string problem)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(problem, line, StringComparison.Ordinal);
        Assert.EndsWith("; see 'actorqueue --help'", line, StringComparison.Ordinal);
        Assert.DoesNotContain(".;", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run - --cluster --listen 127.0.0.1:0 --insecure-loopback", "actorqueue: --listen must be HOST:PORT with a port in 1..65535, got '127.0.0.1:0'; see 'actorqueue --help'")]
    [InlineData("node --seed --cert-dir w1", "actorqueue: --seed needs a value; see 'actorqueue --help'")]
    [InlineData("cert", "actorqueue: cert needs a subcommand: 'ca' (a cluster's private CA) or 'node' (a node certificate from that CA); see 'actorqueue --help'")]
    [InlineData("node --seed 127.0.0.1:9 --listen", "actorqueue: --listen needs a value; see 'actorqueue --help'")]
    public async Task A_usage_error_is_one_plain_line_naming_the_option(string command, string error)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        Assert.Equal(error, result.Errors.Trim());
    }
}
