namespace ActorQueue.Tests.Cli;

/// <summary><c>--resume</c> after a crash that tore the joblog's last line: the torn record does not count and nothing is glued onto it.</summary>
public sealed class JobLogResumeTests : IDisposable
{
    private const string Finished1 = "1\t:\t1700000000.000\t   0.010\t0\t6\t0\t0\techo job-1";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData(CliScratch.JobLogHeader + "\n" + Finished1 + "\n" + "2\t:\t17000")] // cut in the middle of a record
    [InlineData(CliScratch.JobLogHeader + "\n" + Finished1 + "\n" + "2\t:\t1700000000.000\t   0.010\t0\t6\t0\t0\techo job-2")] // cut just before its newline
    [InlineData(CliScratch.JobLogHeader + "\n" + Finished1 + "\n" + "2")] // only the sequence number made it
    public async Task Resume_ignores_a_torn_last_record_and_starts_the_next_on_a_new_line(string joblog)
    {
        File.WriteAllText(_scratch.PathOf("log.tsv"), joblog);
        var jobs = _scratch.Write("jobs.txt", "echo job-1", "echo job-2", "echo job-3");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", "log.tsv", "--resume");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(["job-2", "job-3"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("incomplete last record", result.Errors);
        var log = _scratch.ReadJobLog(); // whole, well-formed lines only
        Assert.Equal([1L, 2L, 3L], log.Select(l => l.Seq).Order());
        Assert.Equal("echo job-1", log.Single(l => l.Seq == 1).Command);
    }

    [Fact]
    public async Task Resume_rewrites_a_header_that_was_torn_before_any_record()
    {
        File.WriteAllText(_scratch.PathOf("log.tsv"), "Seq\tHost\tStart");
        var jobs = _scratch.Write("jobs.txt", "echo job-1");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--joblog", "log.tsv", "--resume", "-q");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("job-1\n", result.Output);
        Assert.Equal(1L, Assert.Single(_scratch.ReadJobLog()).Seq);
    }
}
