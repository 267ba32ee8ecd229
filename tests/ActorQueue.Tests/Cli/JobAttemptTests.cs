using System.Diagnostics;

namespace ActorQueue.Tests.Cli;

/// <summary>Every attempt of a job ends as a success, a failure or an interruption, and is counted; none vanishes.</summary>
public sealed class JobAttemptTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_job_that_cannot_start_is_a_failed_job_with_its_reason_in_the_joblog_and_the_exit_status()
    {
        // One argument over Linux's 128 KiB MAX_ARG_STRLEN: exec fails with E2BIG.
        var jobs = _scratch.Write("jobs.txt", "echo " + new string('x', 200_000), "echo small");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "jobs.txt", "--joblog", "log.tsv", "--retries", "1");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("actorqueue: job 1 failed: could not start (Argument list too long) after 2 attempts", result.Errors);
        Assert.Contains("1 succeeded, 1 failed, 1 retry;", result.Errors);
        Assert.Equal("small\n", result.Output);
        var log = _scratch.ReadJobLog().OrderBy(l => l.Seq).ToList();
        Assert.Equal([1L, 2L], log.Select(l => l.Seq));
        Assert.Equal((-1, 0), (log[0].Exit, log[0].Signal));
        Assert.Equal((0, 0), (log[1].Exit, log[1].Signal));
    }

    [Fact]
    public async Task Output_that_cannot_be_written_fails_the_job_keeps_it_out_of_the_joblog_and_stops_the_run()
    {
        var jobs = _scratch.Write("jobs.txt", "echo out-1", "echo out-2", "echo out-3");
        using var run = Process.Start(CliProcess.StartInfo(_scratch.Dir, "run", jobs, "-j", "1", "--joblog", "log.tsv"))!;
        run.StandardOutput.Close(); // like `actorqueue run ... | head -0`: every write to stdout now fails with EPIPE
        run.StandardInput.Close();
        var errors = await run.StandardError.ReadToEndAsync();
        await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(255, run.ExitCode); // the run stopped by its own failure (stdout), whatever failed
        Assert.Contains("actorqueue: job 1: its output could not be written", errors);
        Assert.Contains("not in the joblog, so --resume runs it again", errors);
        Assert.Contains("0 succeeded, 1 failed", errors);
        Assert.Contains("2 queued job(s) not started", errors);
        Assert.Empty(_scratch.ReadJobLog());
    }
}
