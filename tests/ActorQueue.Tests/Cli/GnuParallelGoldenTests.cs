using System.Diagnostics;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// actorqueue against GNU parallel on the same command lines: each case of <c>Golden/cases.tsv</c> is a shell script
/// run with <c>$P</c> set to the runner, and its stdout and exit status must equal what GNU parallel did
/// (<c>Golden/NAME.out</c>, recorded from the version in <c>Golden/VERSION</c> by <c>Golden/record.sh</c>). Where
/// <c>parallel</c> is installed, the same case also runs on it live, so a golden file that no longer says what
/// parallel does fails too (re-record it then); CI has no parallel, and the golden files carry the comparison there.
/// </summary>
public sealed class GnuParallelGoldenTests
{
    private static readonly string GoldenDir = Path.Combine(CliProcess.RepositoryRoot(), "tests", "ActorQueue.Tests", "Cli", "Golden");

    private static readonly Lazy<bool> ParallelInstalled = new(() =>
        Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(dir => File.Exists(Path.Combine(dir, "parallel"))) == true);

    public static TheoryData<string> Cases()
    {
        var cases = new TheoryData<string>();
        foreach (var line in File.ReadLines(Path.Combine(GoldenDir, "cases.tsv")).Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            cases.Add(line.Split('\t', 2)[0]);
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Actorqueue_prints_and_exits_as_GNU_parallel_does(string name)
    {
        var script = File.ReadLines(Path.Combine(GoldenDir, "cases.tsv")).Single(l => l.StartsWith(name + "\t", StringComparison.Ordinal)).Split('\t', 2)[1];
        var golden = await File.ReadAllTextAsync(Path.Combine(GoldenDir, name + ".out"));

        var actorqueue = await RunCaseAsync(script, $"dotnet {CliProcess.DllPath} run -q");

        Assert.Equal(golden, actorqueue);
        if (ParallelInstalled.Value)
        {
            var parallel = await RunCaseAsync(script, "parallel --will-cite");
            Assert.True(golden == parallel, $"the installed GNU parallel no longer does what Golden/{name}.out says (recorded with {await File.ReadAllTextAsync(Path.Combine(GoldenDir, "VERSION"))}); run Golden/record.sh:\n{parallel}");
        }
    }

    /// <summary>Runs a case in a fresh directory with the fixtures; its stdout, then <c>exit=N</c>, as record.sh writes them.</summary>
    private static async Task<string> RunCaseAsync(string script, string runner)
    {
        using var scratch = new CliScratch();
        var fixtures = await CliProcess.RunAsync(Shell(scratch.Dir, Path.Combine(GoldenDir, "fixtures.sh"), runner, file: true), null);
        Assert.True(fixtures.ExitCode == 0, fixtures.Errors);
        var result = await CliProcess.RunAsync(Shell(scratch.Dir, script, runner, file: false), null);
        return result.Output + $"exit={result.ExitCode}\n";
    }

    private static ProcessStartInfo Shell(string directory, string script, string runner, bool file)
    {
        var start = CliProcess.StartInfo(directory);
        start.FileName = "sh";
        start.ArgumentList.Clear();
        if (!file)
        {
            start.ArgumentList.Add("-c");
        }

        start.ArgumentList.Add(script);
        start.Environment["P"] = runner;
        return start;
    }
}
