using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary><c>run --results DIR</c> with input that cannot be read: a usage error leaves no directory behind.</summary>
public sealed class ResultsDirectoryRound49Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The results directory (and the parents it needed) that a run made is removed again by a usage error of its input.
    /// Failed before: "a usage error left the --results directory behind" (--results is made before the input opens, so
    /// a mistyped input file left an empty results directory behind; found by h224). Mutant: removing only the leaf
    /// (the nested case fails).
    /// </summary>
    [Theory]
    [InlineData("newdir", "newdir")]
    [InlineData("newdir/deeper/res", "newdir")]
    public async Task A_missing_input_file_leaves_no_results_directory(string results, string made)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--results", results, "missing.txt");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith("actorqueue: cannot read 'missing.txt': ", result.Errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_scratch.Dir, made)), "a usage error left the --results directory behind");
    }

    /// <summary>A results directory that existed before the run is left alone by the usage error (control).</summary>
    [Fact]
    public async Task A_results_directory_that_existed_stays()
    {
        Directory.CreateDirectory(Path.Combine(_scratch.Dir, "kept"));

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--results", "kept", "missing.txt");

        Assert.Equal(255, result.ExitCode);
        Assert.True(Directory.Exists(Path.Combine(_scratch.Dir, "kept")));
    }
}
