using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 51 (h232's finding 8): the checks that two of a run's files are not one missed names that do not exist yet
/// but meet through a directory symlink (the joblog then wrote into the SQLite state), and <c>--results</c> on the path
/// of <c>--state</c> or <c>--joblog</c> was said as "a directory".
/// </summary>
public sealed class OutputSamePathRound51Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Failed before: exit 0 for the --state/--joblog case (the joblog's records went into the database file), exit 0
    /// for the --log/--state case; "'x' is a directory, not a state file" and "cannot write 'x': it is a directory" for the
    /// --results cases. Mutant: the same-file check by full path and existing identity only (the symlink cases fail).
    /// </summary>
    [Theory]
    [InlineData("run --state d/s.db --joblog e/s.db true ::: a b", "--state must be a file of its own, not the input, the joblog or the log, got 'd/s.db'")]
    [InlineData("run --log d/s.db --state e/s.db true ::: a b", "--state must be a file of its own, not the input, the joblog or the log, got 'e/s.db'")]
    [InlineData("run --log d/l --joblog e/l true ::: a b", "--log must not be the input file or the joblog, got 'd/l'")]
    [InlineData("run --results x --state x true ::: a", "--results and --state name the same path 'x': give each its own")]
    [InlineData("run --results d/x --joblog e/x true ::: a", "--results and --joblog name the same path 'e/x': give each its own")]
    public async Task Two_outputs_on_one_path_are_refused_before_anything_is_made(string command, string problem)
    {
        Directory.CreateDirectory(_scratch.PathOf("d"));
        File.CreateSymbolicLink(_scratch.PathOf("e"), "d");
        var before = _scratch.Entries();

        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        Assert.Equal($"actorqueue: {problem}; see 'actorqueue --help'\n", result.Errors);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}]");
    }
}
