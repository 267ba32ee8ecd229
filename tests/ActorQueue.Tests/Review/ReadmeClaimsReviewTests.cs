using System.Diagnostics;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 167's review of README.md as a user reads it on a clean checkout. Its first command (the main job) is run
/// exactly as the README writes it, and its outcome is the one the README describes: 12 jobs, job 8 failing, job 10
/// failing once and succeeding on its retry (only that last attempt shown), exit status 1.
/// </summary>
public sealed class ReadmeClaimsReviewTests : IDisposable
{
    private const string Prefix = "dotnet run --project src/Cli -- ";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A run stopped between job 10's two attempts (Ctrl-C, a crash) must not change the next run: job 10 still fails once
    /// and succeeds on its retry. Both runs share one <c>TMPDIR</c> (under the scratch directory), as runs on one machine do.
    /// Failed before: job 10 kept its marker at the fixed path /tmp/actorqueue-example-retry whatever the run, so the
    /// stopped run's marker made the next run's job 10 succeed at once: "11 succeeded, 1 failed, 1 retry", not 2 retries.
    /// </summary>
    [Fact]
    public async Task The_READMEs_main_command_ends_as_it_says_even_after_a_run_stopped_between_job_10s_attempts()
    {
        var root = CliProcess.RepositoryRoot();
        var args = MainCommandArguments(root);
        Assert.Equal(["run", "examples/jobs.txt", "-j", "4", "--retries", "1"], args);

        // The earlier run, stopped after job 10's first attempt: job 10 alone, with no retry.
        var commands = File.ReadLines(Path.Combine(root, "examples", "jobs.txt"))
            .Where(line => line.Trim().Length > 0 && !line.TrimStart().StartsWith('#'))
            .ToList();
        Assert.Equal(12, commands.Count);
        var stopped = await RunAsync(root, "run", "-q", _scratch.Write("job-10.txt", commands[9]));
        Assert.True(stopped.ExitCode == 1, $"job 10's first attempt should fail:\n{stopped.Errors}");

        var result = await RunAsync(root, [.. args]);

        Assert.True(result.ExitCode == 1, $"exit {result.ExitCode}, the README says 1:\n{result.Output}\n{result.Errors}");
        Assert.Contains("job 10: succeeded on the retry", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("job 10: first attempt fails", result.Output + result.Errors, StringComparison.Ordinal);
        Assert.Contains("job 8 failed: exited with 3 after 2 attempts", result.Errors, StringComparison.Ordinal);
        Assert.Contains("12 jobs in ", result.Errors, StringComparison.Ordinal);
        Assert.Contains("11 succeeded, 1 failed, 2 retries", result.Errors, StringComparison.Ordinal);
    }

    /// <summary>The arguments of the README's first command (the first line of its first bash block), as a shell splits them.</summary>
    private static string[] MainCommandArguments(string root)
    {
        var readme = File.ReadAllLines(Path.Combine(root, "README.md"));
        var block = Array.FindIndex(readme, line => line.Trim() == "```bash");
        Assert.True(block >= 0, "README.md has no bash block");
        var line = readme[block + 1];
        Assert.StartsWith(Prefix, line, StringComparison.Ordinal);
        var command = line[Prefix.Length..].Split('#')[0];
        return command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Runs the built command in <paramref name="directory"/> with <c>TMPDIR</c> in the scratch directory.</summary>
    private async Task<CliResult> RunAsync(string directory, params string[] args)
    {
        ProcessStartInfo start = CliProcess.StartInfo(directory, args);
        start.Environment["TMPDIR"] = Directory.CreateDirectory(_scratch.PathOf("tmp")).FullName;
        return await CliProcess.RunAsync(start, null);
    }
}
