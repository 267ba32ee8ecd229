using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary><c>run --results DIR</c> with input that cannot be read: a usage error leaves no directory behind.</summary>
public sealed class ResultsDirectoryRound49Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The results directory is made only once the input is open: a missing input file is a usage error before it.
    /// Failed before: "a usage error left the --results directory behind" (--results was created before the input was opened,
    /// so a mistyped input file left an empty results directory behind; found by h224).
    /// </summary>
    [Fact]
    public async Task A_missing_input_file_leaves_no_results_directory()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--results", "newdir", "missing.txt");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith("actorqueue: cannot read 'missing.txt': ", result.Errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_scratch.Dir, "newdir")), "a usage error left the --results directory behind");
    }
}
