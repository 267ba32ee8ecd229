using ActorQueue.Cli.Commands;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The third review of <c>actorqueue run</c> against GNU parallel 20221122 (helper 99): two jobs with one
/// <c>--results</c> directory, <c>--tag</c>'s prefix, and <c>-k</c> with <c>--halt now</c>, <c>-j</c>'s
/// <c>0</c>, <c>N%</c>, <c>+N</c> and <c>-N</c>, and <c>-a FILE</c> (golden case arg-files-come-before-the-other-sources). The parts that print as
/// parallel does are golden cases too (<c>Cli/Golden/cases.tsv</c>: a repeated argument's results, <c>--tag</c>,
/// <c>--resume</c> and <c>--resume-failed</c> after the input changed).
/// </summary>
public sealed class CliRound3ReviewTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Job 1 and job 2 have the same argument, so the same results directory; job 2 ends first. As GNU parallel with
    /// -j1, the later job's files stay, whichever job ends last, and stderr says job 1's were not written.
    /// Failed before: out/1/a/stdout was "job1\n" (job 1, ending last, overwrote job 2's files without a word).
    /// </summary>
    [Fact]
    public async Task Of_two_jobs_with_one_results_directory_the_later_jobs_files_stay_whichever_ends_last()
    {
        var go = _scratch.PathOf("go");
        var seqFile = _scratch.PathOf("out/1/a/seq");
        using var run = new RunningCli(_scratch.Dir, "run", "-q", "-j", "2", "--results", "out",
            $"if [ {{#}} = 1 ]; then while [ ! -f '{go}' ]; do sleep 0.02; done; fi; echo job{{#}}", ":::", "a", "a");
        await Poll.UntilAsync(() => File.Exists(seqFile) && File.ReadAllText(seqFile) == "2", TimeSpan.FromSeconds(30), "job 2 wrote its results");
        File.WriteAllText(go, "");

        Assert.Equal(0, await run.ExitAsync());
        Assert.Equal("2", File.ReadAllText(seqFile));
        Assert.Equal("job2\n", File.ReadAllText(_scratch.PathOf("out/1/a/stdout")));
        Assert.Contains($"job 1: its results are not written: job 2, later in the input, has the same directory out/1/a", run.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// With -j1 the files are parallel's (the golden case results-of-a-repeated-argument-keep-the-later-jobs-files);
    /// the replaced files are said on stderr, where parallel says nothing.
    /// Failed before: stderr was empty (job 1's files were replaced silently).
    /// </summary>
    [Fact]
    public async Task A_job_whose_results_replace_an_earlier_jobs_says_so()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-j", "1", "--results", "out", "echo {#}", ":::", "a", "a");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("2\n", File.ReadAllText(_scratch.PathOf("out/1/a/stdout")));
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("actorqueue: job 2: its results replace those of job 1, which has the same directory out/1/a (as in GNU parallel, the later job's files stay)", line);
    }

    /// <summary>
    /// --tag prefixes a job's arguments, joined by spaces, as GNU parallel does (the golden case
    /// tag-prefixes-the-arguments); a job file's lines keep their id.
    /// Failed before: the prefix was the sequence number ("1\ta 1").
    /// </summary>
    [Fact]
    public async Task Tag_prefixes_the_arguments_of_input_sources()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-k", "--tag", "echo", ":::", "a", "b c", ":::", "1");
        var jobFile = await CliProcess.RunAsync(_scratch.Dir, "echo x\n", "run", "-q", "--tag", "-");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("a 1\ta 1\nb c 1\tb c 1\n", result.Output);
        Assert.Equal("1\tx\n", jobFile.Output);
    }

    /// <summary>
    /// -k with --halt now: job 2 ended and waits for job 1, then job 3 (started in job 2's slot, so once job 2's outcome
    /// is in) fails, and the halt kills job 1. GNU parallel then prints and logs neither job 2 nor job 3 (their held
    /// reports are dropped, so the failure's own output is lost); here no report is dropped: jobs 2 and 3 print and are
    /// logged in input order, the killed job 1 is neither, and the exit status is the failed job's, as parallel's
    /// (README states the difference).
    /// </summary>
    [Fact]
    public async Task Keep_order_with_halt_now_prints_and_logs_the_held_reports_of_finished_jobs_in_order()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-k", "-j", "2", "--halt", "now,fail=1", "--joblog", "log.tsv",
            ":::", "while true; do sleep 0.02; done", "echo two", "echo three; exit 3");

        Assert.Equal(3, result.ExitCode);
        Assert.Equal("two\nthree\n", result.Output);
        Assert.Equal([(2L, 0), (3L, 3)], _scratch.ReadJobLog().Select(l => (l.Seq, l.Exit)));
    }

    /// <summary>
    /// -j as GNU parallel 20221122 takes it, each row as parallel ran it on two processors: 0 is as many as can run, N%
    /// rounds up, and a count that leaves no job is refused (-1 here: no count at all).
    /// Failed before: only a whole number >= 1 was taken (JobCount did not exist; "-j 0" was a usage error).
    /// </summary>
    [Theory]
    [InlineData("4", 4)]
    [InlineData("0", 4096)]
    [InlineData("100%", 2)]
    [InlineData("50%", 1)]
    [InlineData("33%", 1)]
    [InlineData("75%", 2)]
    [InlineData("125%", 3)]
    [InlineData("150%", 3)]
    [InlineData("1%", 1)]
    [InlineData("0%", 0)]
    [InlineData("+1", 3)]
    [InlineData("+0", 2)]
    [InlineData("-1", 1)]
    [InlineData("-2", 0)]
    [InlineData("-5", 0)]
    [InlineData("2.5", -1)]
    [InlineData("+", -1)]
    [InlineData("%", -1)]
    [InlineData("+5%", -1)]
    [InlineData("99999999999", -1)]
    public void J_takes_gnu_parallels_counts(string text, int jobs) => Assert.Equal(jobs, JobCount.Parse(text, processors: 2));

    /// <summary>
    /// -j 0 runs every job at once: six jobs that each wait until all six have started all end (a --timeout fails
    /// them otherwise). Failed before: "-j takes a whole number >= 1, got '0'", exit 255.
    /// </summary>
    [Fact]
    public async Task J_0_runs_as_many_jobs_as_can_run()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-j", "0", "--timeout", "60s",
            "touch started-{}; while [ $(ls started-* | wc -l) -lt 6 ]; do sleep 0.02; done; echo {}", ":::", "1", "2", "3", "4", "5", "6");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal(["1", "2", "3", "4", "5", "6"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    }

    /// <summary>A -j that leaves no job to run is one line on stderr, exit 255, before any job starts (parallel: "Cannot run any jobs").</summary>
    [Fact]
    public async Task A_j_that_leaves_no_job_is_a_usage_error_before_any_job_starts()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-j", "-99", "touch started", ":::", "a");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith($"actorqueue: -j -99 leaves no job to run (the processor count is {Environment.ProcessorCount})", Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.False(File.Exists(_scratch.PathOf("started")));
    }

    /// <summary>
    /// -a FILE is :::: FILE before the other sources (the golden case arg-files-come-before-the-other-sources); a bad
    /// one is a one-line usage error before any job starts. Failed before: "unknown option '-a'" for every use.
    /// </summary>
    [Theory]
    [InlineData("", "-a needs a file (or - for stdin) to read arguments from, got ''")]
    [InlineData("-", ":::: - is given twice: stdin can be read only once")]
    public async Task A_bad_arg_file_is_a_usage_error_before_any_job_starts(string file, string message)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-a", file, "touch started", "::::", "-");

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith($"actorqueue: {message}", Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.False(File.Exists(_scratch.PathOf("started")));
    }

    /// <summary>
    /// A :::: file with \r\n line ends gives arguments without the \r, where GNU parallel keeps it ("[a\r]"): the
    /// difference README states, pinned so it stays deliberate.
    /// </summary>
    [Fact]
    public async Task A_crlf_argument_file_gives_arguments_without_the_carriage_return()
    {
        File.WriteAllText(_scratch.PathOf("crlf.txt"), "a\r\nb\r\n");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "-q", "-k", "echo", "[{}]", "::::", "crlf.txt");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("[a]\n[b]\n", result.Output);
    }
}
