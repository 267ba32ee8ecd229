using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 50: a usage error of <c>actorqueue run</c> leaves nothing behind. Its outputs (<c>--results</c>, <c>--log</c>,
/// <c>--state</c> and its lock, <c>--joblog</c>) were made one after another, each before the later ones' checks, so an
/// error in a later one left the earlier ones behind; only the input's errors removed what was made (the results directory).
/// </summary>
public sealed class RunLeftoversRound50Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A usage error that only a check of the path finds (a missing directory, a directory where a file goes, two options
    /// on one file) comes before any output is made. Failed before: "a usage error left [L, S, S.lock] behind" (the
    /// --joblog case; the --log case left [R], the '--log x --state x' case [x], the directory --joblog [L]). Mutant: the
    /// checks of the paths back after the outputs' creation, with no removal (all fail); the checks kept first but
    /// the same-file check of --state after --log's open (the 'x' case fails). The --cert-dir case is a control (it passed
    /// before: the cluster's options are checked as they are parsed, before the run begins).
    /// </summary>
    [Theory]
    [InlineData("run --log L --state S --joblog badpath/x true ::: a", "--joblog: cannot write 'badpath/x': its directory 'badpath' does not exist")]
    [InlineData("run --results R --log badpath/l true ::: a", "--log: cannot write 'badpath/l': its directory 'badpath' does not exist")]
    [InlineData("run --results R/deeper --state afile/s true ::: a", "--state: cannot use 'afile/s': 'afile' is a file, not a directory")]
    [InlineData("run --log x --state x true ::: a", "--state must be a file of its own, not the input, the joblog or the log, got 'x'")]
    [InlineData("run --log L --joblog adir true ::: a", "--joblog: cannot write 'adir': it is a directory")]
    [InlineData("run --log L --results R --state adir true ::: a", "--state: 'adir' is a directory, not a state file")]
    [InlineData("run --cluster --listen 127.0.0.1:9 --cert-dir nowhere --log L --joblog J --results R true ::: a", "--cert-dir 'nowhere/node.pfx': its directory 'nowhere' does not exist")]
    public async Task A_path_usage_error_comes_before_any_output_is_made(string command, string problem)
    {
        await File.WriteAllTextAsync(_scratch.PathOf("afile"), "");
        Directory.CreateDirectory(_scratch.PathOf("adir"));
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {problem}; see 'actorqueue --help'\n", result.Errors);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"a usage error left [{string.Join(", ", _scratch.Entries().Except(before))}] behind");
    }

    /// <summary>
    /// A usage error that only opening an output finds (a --state file that is no SQLite database, a --resume joblog that
    /// is no joblog, a joblog whose header cannot be written) removes what the run made before it: the new results directory, log, state and lock file. Failed
    /// before: "a usage error left [L, R] behind" (and [L, S, S.lock] for the joblog). Mutant: removal of the files
    /// without the results directory (the R cases fail); removal of every output, new or not (the control test below fails).
    /// </summary>
    [Theory]
    [InlineData("run --results R --log L --state notdb true ::: a", "--state: ")]
    [InlineData("run --log L --state S --joblog /dev/full true ::: a", "--joblog: cannot write '/dev/full': ")]
    [InlineData("run --log L --results R/deeper --joblog notlog --resume true ::: a", "--joblog: ")]
    public async Task A_usage_error_found_by_opening_an_output_removes_what_the_run_made(string command, string problem)
    {
        await File.WriteAllTextAsync(_scratch.PathOf("notdb"), "not an SQLite database, long enough to have a header......................................\n");
        await File.WriteAllTextAsync(_scratch.PathOf("notlog"), "this is no joblog\n");
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith($"actorqueue: {problem}", result.Errors, StringComparison.Ordinal);
        Assert.Single(result.Errors.TrimEnd('\n').Split('\n'));
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"a usage error left [{string.Join(", ", _scratch.Entries().Except(before))}] behind, and removed [{string.Join(", ", before.Except(_scratch.Entries()))}]");
        Assert.Equal("this is no joblog\n", await File.ReadAllTextAsync(_scratch.PathOf("notlog")));
    }

    /// <summary>
    /// Outputs that existed before the run stay as they were when a later one is refused: only what the run made goes.
    /// (A control: it passed before too.)
    /// </summary>
    [Fact]
    public async Task Outputs_that_existed_before_stay()
    {
        await File.WriteAllTextAsync(_scratch.PathOf("L"), "kept log\n");
        Directory.CreateDirectory(_scratch.PathOf("R"));
        await File.WriteAllTextAsync(_scratch.PathOf("R/kept"), "");
        await File.WriteAllTextAsync(_scratch.PathOf("notdb"), "not an SQLite database, long enough to have a header......................................\n");
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--results", "R", "--log", "L", "--state", "notdb", "true", ":::", "a");

        Assert.Equal(255, result.ExitCode);
        Assert.True(before.SequenceEqual(_scratch.Entries()), string.Join(", ", _scratch.Entries()));
        Assert.Equal("kept log\n", await File.ReadAllTextAsync(_scratch.PathOf("L")));
    }
}
