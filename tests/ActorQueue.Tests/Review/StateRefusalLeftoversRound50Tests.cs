using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 50: a run the job runner refuses for its <c>--state</c> (the state belongs to another input) starts no job and
/// exits 255, as a usage error: it leaves nothing behind either (h226 found it; <see cref="RunLeftoversRound50Tests"/>
/// covers the refusals of the command itself).
/// </summary>
public sealed class StateRefusalLeftoversRound50Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Failed before: "the refused run left [J2, L2, R2] behind". The state file, which existed, stays as it was.
    /// </summary>
    [Fact]
    public async Task A_run_refused_for_its_state_removes_the_joblog_log_and_results_it_made()
    {
        var first = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "echo {}", ":::", "a", "b");
        Assert.Equal(0, first.ExitCode);
        var before = _scratch.Entries();
        var stateBytes = await File.ReadAllBytesAsync(_scratch.PathOf("S"));

        var refused = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--state", "S", "--log", "L2", "--results", "R2", "--joblog", "J2", "echo {}", ":::", "x", "y");

        Assert.Equal(255, refused.ExitCode);
        Assert.StartsWith("actorqueue: --state: ", refused.Errors, StringComparison.Ordinal);
        Assert.Equal("", refused.Output);
        Assert.True(before.SequenceEqual(_scratch.Entries()), $"the refused run left [{string.Join(", ", _scratch.Entries().Except(before))}] behind");
        Assert.Equal(stateBytes, await File.ReadAllBytesAsync(_scratch.PathOf("S")));
    }
}
