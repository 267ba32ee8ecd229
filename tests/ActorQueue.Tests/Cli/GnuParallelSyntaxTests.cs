using System.Globalization;
using System.Text.RegularExpressions;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// The GNU parallel options beyond what the golden cases print: usage errors before any job starts, --delay's spacing,
/// {%} slots, --eta, and the command line's help, version and completions.
/// </summary>
public sealed class GnuParallelSyntaxTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>Each case would run <c>touch started</c> if it were accepted.</summary>
    [Theory]
    [InlineData("touch started :::: missing.txt", ":::: cannot read 'missing.txt'")]
    [InlineData("touch started ::: x :::: missing.txt", ":::: cannot read 'missing.txt'")]
    [InlineData("touch started ::::", ":::: needs a file")]
    [InlineData("touch started ::: x :::: - :::: -", "stdin can be read only once")]
    [InlineData("--jsonl touch started ::: x", "--jsonl reads jobs from a file")]
    [InlineData("--halt soon,fail=50%", "--halt with a percentage needs to know how many jobs there are")]
    [InlineData("--halt sometimes touch started ::: x", "--halt takes WHEN,WHAT=N or WHEN,WHAT=N%")]
    [InlineData("--halt now,fail=0 touch started ::: x", "--halt needs N >= 1")]
    [InlineData("--halt soon,fail=101% touch started ::: x", "--halt needs N >= 1 (and a percentage <= 100%)")]
    [InlineData("--halt 1 --halt-on-failure touch started ::: x", "--halt-on-failure and --halt are two ways")]
    [InlineData("--delay soon touch started ::: x", "--delay takes 0 (no delay) or a duration")]
    [InlineData("--resume-failed touch started ::: x", "--resume-failed needs --joblog FILE")]
    [InlineData("--results /dev/null/out touch started ::: x", "--results: cannot create '/dev/null/out'")]
    [InlineData("--joblog args.txt touch started :::: args.txt", "--joblog must not be the input file 'args.txt'")]
    [InlineData("-k --frobnicate touch started ::: x", "unknown option '--frobnicate'")]
    [InlineData("touch started {=uc=} ::: x", "{=uc=} is GNU parallel's perl replacement string")]
    public async Task A_bad_parallel_option_or_source_is_a_one_line_usage_error_before_any_job(string args, string message)
    {
        _scratch.Write("args.txt", "x");

        var result = await CliProcess.RunAsync(_scratch.Dir, "touch started\n", ["run", .. args.Split(' ')]);

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}: {result.Errors}");
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line, StringComparison.Ordinal);
        Assert.False(File.Exists(_scratch.PathOf("started")), "no job started");
        Assert.Equal("x", File.ReadAllText(_scratch.PathOf("args.txt")).Trim());
    }

    /// <summary>As in GNU parallel, <c>--delay 0</c> (in any unit) means no delay; it was refused as out of range.</summary>
    [Theory]
    [InlineData("0")]
    [InlineData("0ms")]
    [InlineData("0.0s")]
    public async Task Delay_zero_means_no_delay(string zero)
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-k", "--delay", zero, "echo", ":::", "a", "b");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("a\nb\n", result.Output);
    }

    [Fact]
    public async Task Delay_starts_jobs_at_least_that_far_apart()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "-j", "4", "--delay", "300ms", "--joblog", "log.tsv", "true", ":::", "1", "2", "3", "4");

        Assert.True(result.ExitCode == 0, result.Errors);
        var starts = _scratch.ReadJobLog("log.tsv").Select(l => l.Start).Order().ToList();
        Assert.Equal(4, starts.Count);
        // The joblog keeps milliseconds (truncated), and the wall clock it reads may be slewed against the monotonic
        // clock the delay is measured on: two starts 300 ms apart can read up to 2 ms closer.
        Assert.All(starts.Zip(starts.Skip(1), (a, b) => b - a), gap => Assert.True(gap >= 0.298, $"starts only {gap:0.000}s apart"));
    }

    /// <summary>
    /// With --delay, jobs start in input order, as GNU parallel starts them, however many may run at once. The joblog's
    /// start times (at least the delay apart, so never equal) give the order: no timing is asserted.
    /// </summary>
    [Fact]
    public async Task Delay_starts_jobs_in_input_order()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, ["run", "-q", "-j", "8", "--delay", "20ms", "--joblog", "log.tsv", "true", ":::",
            .. Enumerable.Range(1, 12).Select(i => i.ToString(CultureInfo.InvariantCulture))]);

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), _scratch.ReadJobLog("log.tsv").OrderBy(l => l.Start).Select(l => l.Seq));
    }

    [Fact]
    public async Task A_slot_is_held_by_one_running_job_at_a_time_and_numbered_within_j()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "-j", "3", "--joblog", "log.tsv",
            "echo {%} $(date +%s.%N); sleep 0.2; echo {%} $(date +%s.%N)", ":::", "1", "2", "3", "4", "5", "6", "7");

        Assert.True(result.ExitCode == 0, result.Errors);
        var spans = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' '))
            .Chunk(2).Select(pair => (Slot: int.Parse(pair[0][0], CultureInfo.InvariantCulture),
                From: double.Parse(pair[0][1], CultureInfo.InvariantCulture), To: double.Parse(pair[1][1], CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(7, spans.Count);
        Assert.All(spans, s => Assert.InRange(s.Slot, 1, 3));
        foreach (var slot in spans.GroupBy(s => s.Slot))
        {
            var ordered = slot.OrderBy(s => s.From).ToList();
            Assert.All(ordered.Zip(ordered.Skip(1)), pair => Assert.True(pair.Item1.To <= pair.Item2.From, $"slot {slot.Key} held by two jobs at once"));
        }
    }

    [Fact]
    public async Task Eta_reports_the_time_left_even_when_quiet()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--eta", "true", ":::", "1", "2", "3");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Matches(new Regex(@"^actorqueue: ETA: 0s Left: 0 AVG: \d+\.\d\ds$", RegexOptions.Multiline), result.Errors);
    }

    [Fact]
    public async Task Version_prints_the_package_version()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "--version");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Matches(new Regex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9a-f]+)?\n$"), result.Output);
    }

    [Fact]
    public async Task Run_help_documents_the_parallel_options_and_syntax()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "--help");

        Assert.True(result.ExitCode == 0, result.Errors);
        foreach (var text in new[] { "-k, --keep-order", "--results <DIR>", "--halt <WHEN,WHAT=N[%]>", "--delay <DURATION>", "--resume-failed", "--eta", ":::", "{/.}" })
        {
            Assert.Contains(text, result.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Completions_suggest_the_options_a_word_starts()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "[suggest:8]", "run --re");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal(["--results", "--resume", "--resume-failed", "--retries"], result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Words_after_the_first_separator_are_arguments_even_help()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "-k", "echo", ":::", "--help", "-h", "--version");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("--help\n-h\n--version\n", result.Output);
    }
}
