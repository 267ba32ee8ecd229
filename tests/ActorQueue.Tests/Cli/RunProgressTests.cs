using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// The progress line's waiting count (a line every 2 s on a redirected stderr): a job a worker holds that has not
/// started yet (its --delay turn, a --limit slot) waits as much as one still in the queue. Such jobs showed as
/// "0 waiting".
/// </summary>
public sealed class RunProgressTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>A job that records that it started, then runs until the test writes the release file.</summary>
    private string Held => $"touch {_scratch.PathOf("started")}; until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done";

    private void Release() => File.WriteAllText(_scratch.PathOf("release"), "");

    [Fact]
    public async Task Jobs_waiting_for_their_delay_turn_count_as_waiting_until_the_run_stops_them()
    {
        // The first job starts at once and runs; with a delay far longer than the test, the other two wait for their turn.
        var jobs = _scratch.Write("jobs.txt", Held, "true", "true");
        using var run = new RunningCli(_scratch.Dir, "run", jobs, "-j", "4", "--delay", "60s");

        await run.WaitForErrorsAsync("1 running, 2 waiting, 0 failed");
        var cleared = run.NextAsync("1 running, 0 waiting, 0 failed");
        await CliProcess.SignalAsync(run.Pid, "INT");
        await cleared; // the run stopped the two before their turn: they wait no more, while the first still runs
        Release();

        Assert.Equal(130, await run.ExitAsync());
        Assert.Contains("1 succeeded, 0 failed", run.Errors, StringComparison.Ordinal);
        Assert.Contains("2 queued job(s) not started", run.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_waiting_for_its_limit_slot_counts_as_waiting()
    {
        // A tagged job has a worker of its own (-j plus the limits): the second, read once the first holds the tag's
        // only slot, waits there for it.
        using var run = new RunningCli(_scratch.Dir, "run", "-", "--jsonl", "-j", "1", "--limit", "net=1");
        await run.Input.WriteLineAsync($$"""{"cmd": "{{Held}}", "tags": ["net"]}""");
        await run.Input.FlushAsync();
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), ClusterNodes.StepTimeout, "the first job started", CliScratch.Tick);
        await run.Input.WriteLineAsync("""{"cmd": "true", "tags": ["net"]}""");
        run.Input.Close();

        await run.WaitForErrorsAsync("1 running, 1 waiting, 0 failed");
        Release();

        Assert.Equal(0, await run.ExitAsync());
        Assert.Contains("2 succeeded, 0 failed", run.Errors, StringComparison.Ordinal);
    }
}
