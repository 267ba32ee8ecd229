using System.Diagnostics;
using System.Globalization;

namespace ActorQueue.Tests.Cli;

/// <summary>The built <c>actorqueue run</c> on real shell commands; limits are checked from the joblog's timestamps.</summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private string Dir => _scratch.Dir;

    private string PathOf(string name) => _scratch.PathOf(name);

    private string Write(string name, params string[] lines) => _scratch.Write(name, lines);

    private List<JobLogLine> ReadJobLog(string name) => _scratch.ReadJobLog(name);

    private int JobLogLineCount() => _scratch.JobLogLineCount();

    private static readonly TimeSpan Tick = CliScratch.Tick;

    private const double Trim = 0.010;

    /// <summary>
    /// The most jobs running at one instant. The joblog keeps milliseconds (start truncated, runtime rounded), so a job
    /// that starts as another ends can seem to overlap it by up to 1.5 ms; each interval is trimmed by 10 ms at both
    /// ends, far below the 200 ms an over-admitted job would overlap by.
    /// </summary>
    private static int MaxOverlap(IEnumerable<JobLogLine> jobs) =>
        jobs.SelectMany(j => new[] { (T: j.Start + Trim, D: +1), (T: j.Start + j.Runtime - Trim, D: -1) })
            .OrderBy(e => e.T).ThenBy(e => e.D)
            .Aggregate((Now: 0, Max: 0), (acc, e) => (acc.Now + e.D, Math.Max(acc.Max, acc.Now + e.D))).Max;

    [Fact]
    public async Task Jobs_never_exceed_the_j_cap()
    {
        var jobs = Write("jobs.txt", Enumerable.Range(1, 8).Select(i => $"sleep 0.2; echo {i}").ToArray());

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "-j", "2", "--joblog", "log.tsv", "-q");

        Assert.Equal(0, result.ExitCode);
        var log = ReadJobLog("log.tsv");
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), log.Select(l => l.Seq).Order());
        Assert.InRange(MaxOverlap(log), 1, 2);
        Assert.Equal(Enumerable.Range(1, 8).Select(i => i.ToString(CultureInfo.InvariantCulture)),
            result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).OrderBy(int.Parse));
    }

    [Fact]
    public async Task A_named_limit_caps_its_tagged_jobs_within_the_j_cap()
    {
        var jobs = Write("jobs.jsonl",
            """{"id": "n1", "cmd": "sleep 0.2", "tags": ["net"]}""",
            """{"id": "n2", "cmd": "sleep 0.2", "tags": ["net"]}""",
            """{"id": "n3", "cmd": "sleep 0.2", "tags": ["net"]}""",
            """{"id": "free", "cmd": "sleep 0.2"}""");

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "--jsonl", "-j", "4", "--limit", "net=1", "--joblog", "log.tsv", "-q");

        Assert.Equal(0, result.ExitCode);
        var log = ReadJobLog("log.tsv");
        Assert.Equal(1, MaxOverlap(log.Where(l => l.Seq <= 3)));
        Assert.Equal(4, log.Count);
    }

    [Fact]
    public async Task A_failed_job_is_retried_and_succeeds()
    {
        var marker = PathOf("attempted");
        var jobs = Write("jobs.txt", $"if [ -e {marker} ]; then echo second-try-ok; else touch {marker}; exit 1; fi");

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "--retries", "2", "--joblog", "log.tsv");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("second-try-ok", result.Output);
        Assert.Contains("1 retry;", result.Errors);
        Assert.Equal(0, Assert.Single(ReadJobLog("log.tsv")).Exit);
    }

    [Fact]
    public async Task A_timeout_kills_the_whole_process_tree()
    {
        var pidFile = PathOf("child.pid");
        var jobs = Write("jobs.txt", $"sleep 60 & echo $! > {pidFile}; wait");

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "--timeout", "500ms", "--joblog", "log.tsv");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("timed out", result.Errors);
        var line = Assert.Single(ReadJobLog("log.tsv"));
        Assert.Equal((-1, 9), (line.Exit, line.Signal));
        var child = _scratch.RecordedPid("child.pid");
        await Poll.UntilAsync(() => !CliScratch.IsAlive(child), TimeSpan.FromSeconds(10), $"the job's background child {child} was killed", Tick);
    }

    [Fact]
    public async Task The_exit_status_counts_failed_jobs_and_caps_at_101()
    {
        var three = Write("three.txt", "exit 1", "exit 2", "true", "exit 7");
        var many = Write("many.txt", Enumerable.Repeat("exit 1", 105).ToArray());

        Assert.Equal(3, (await CliProcess.RunAsync(Dir, null, "run", three, "-q")).ExitCode);
        Assert.Equal(101, (await CliProcess.RunAsync(Dir, null, "run", many, "-j", "8", "-q")).ExitCode);
        Assert.Equal(0, (await CliProcess.RunAsync(Dir, "true\necho hi\n", "run", "-", "-q")).ExitCode);
    }

    /// <summary>GNU parallel runs what it can when -j asks for more and warns; so does actorqueue past its 4096 workers.</summary>
    [Theory]
    [InlineData("-j", "5000")]
    [InlineData("--jobs", "4097")]
    public async Task A_j_above_the_most_that_can_run_at_once_warns_once_and_runs(string option, string value)
    {
        var result = await CliProcess.RunAsync(Dir, "echo one\n", "run", "-", option, value, "-q");

        Assert.True(result.ExitCode == 0, result.Errors);
        Assert.Equal("one\n", result.Output);
        Assert.Equal($"actorqueue: {option} {value} is more than the 4096 jobs that can run at once: running at most 4096 at once\n", result.Errors);
    }

    [Theory]
    [InlineData("-j 0%", "-j 0% leaves no job to run")]
    [InlineData("-j 2.5", "-j takes N, 0 (as many as can run), N% (of the processor count), +N or -N (more or fewer than it), got '2.5'")]
    [InlineData("--limit net", "--limit takes TAG=N, got 'net'")]
    [InlineData("--timeout soon", "--timeout takes a duration")]
    [InlineData("--resume", "--resume needs --joblog")]
    [InlineData("--frobnicate", "unknown option '--frobnicate'")]
    [InlineData("missing.txt", "cannot read 'missing.txt'")]
    [InlineData("--cluster", "--cluster needs --listen HOST:PORT")]
    [InlineData("--listen 127.0.0.1:4053", "--listen only applies with --cluster")]
    [InlineData("--min-nodes 2", "--min-nodes 2 only applies with --cluster")]
    [InlineData("--allow-remote", "--allow-remote only applies with --cluster")]
    [InlineData("--cluster --listen nowhere", "--listen must be HOST:PORT with a port in 1..65535, got 'nowhere'")]
    [InlineData("--timeout 1e300", "--timeout takes a duration from 1ms to 4294967.294s (like 30s, 500ms or 2m), got '1e300'")]
    [InlineData("--timeout 2000h", "--timeout takes a duration from 1ms to 4294967.294s (like 30s, 500ms or 2m), got '2000h'")]
    [InlineData("--timeout 0.0001ms", "--timeout takes a duration from 1ms to 4294967.294s (like 30s, 500ms or 2m), got '0.0001ms'")]
    [InlineData("--joblog nowhere/log.tsv", "--joblog: cannot write 'nowhere/log.tsv'")]
    [InlineData("--joblog .", "--joblog: cannot write '.'")]
    [InlineData("--joblog /dev/full", "--joblog: cannot write '/dev/full'")]
    [InlineData("--joblog nowhere/log.tsv --resume", "--joblog: cannot write 'nowhere/log.tsv'")]
    [InlineData("--log nowhere/run.clef", "--log: cannot write 'nowhere/run.clef'")]
    [InlineData("--limit net=1 --limit net=2", "--limit net is given twice ('net=1' and 'net=2')")]
    public async Task Usage_errors_exit_255_with_one_line_saying_what_to_fix(string args, string message)
    {
        var result = await CliProcess.RunAsync(Dir, $"touch {PathOf("started")}\n", ["run", .. args.Split(' ')]);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains(message, result.Errors);
        Assert.False(File.Exists(PathOf("started")), "no job started");
        Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_malformed_jsonl_line_is_reported_with_its_number_and_counted_failed()
    {
        var input = "{\"cmd\": \"echo one\"}\n{not json}\n{\"cmd\": \"echo three\", \"tags\": [\"gpu\"]}\n{\"cmd\": \"echo four\"}\n";

        var result = await CliProcess.RunAsync(Dir, input, "run", "-", "--jsonl", "-q");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("line 2: not valid JSON", result.Errors);
        Assert.Contains("unknown tag 'gpu'; add --limit gpu=N", result.Errors);
        Assert.Contains("one", result.Output);
        Assert.Contains("four", result.Output);
    }

    [Fact]
    public async Task Each_jobs_output_is_printed_whole_never_interleaved()
    {
        var jobs = Write("jobs.txt",
            "for i in $(seq 1 30); do echo A$i; sleep 0.005; done",
            "for i in $(seq 1 30); do echo B$i; sleep 0.005; done");

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "-j", "2", "-q", "--tag");

        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(60, lines.Length);
        var firstJob = lines[0].Split('\t')[0];
        Assert.All(lines.Take(30), l => Assert.StartsWith(firstJob + "\t", l, StringComparison.Ordinal));
        Assert.DoesNotContain(lines.Skip(30), l => l.StartsWith(firstJob + "\t", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Input_is_read_lazily_so_jobs_run_while_the_input_is_still_open()
    {
        var run = Process.Start(CliProcess.StartInfo(Dir, "run", "-", "-j", "2", "--joblog", "log.tsv", "-q"))!;
        var output = run.StandardOutput.ReadToEndAsync();
        for (var i = 1; i <= 3; i++)
        {
            await run.StandardInput.WriteLineAsync($"echo streamed-{i}");
        }

        await run.StandardInput.FlushAsync();
        await Poll.UntilAsync(() => JobLogLineCount() >= 4, TimeSpan.FromSeconds(30), "the three jobs ran before the input ended", Tick);

        Assert.False(run.HasExited);
        run.StandardInput.Close();
        await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(3, (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    /// <summary>
    /// A run that stops for its own failure (here its input cannot be read: standard input is a directory) exits 255,
    /// GNU parallel's "other error"; it exited 1, which says one job failed, while the summary said 0 failed.
    /// </summary>
    [Fact]
    public async Task A_run_stopped_by_its_own_failure_exits_255_not_a_count_of_failed_jobs()
    {
        var start = CliProcess.StartInfo(Dir, "run", "-");
        start.FileName = "sh";
        foreach (var word in new[] { CliProcess.Program, "sh", "exec \"$@\" < /", "-c" })
        {
            start.ArgumentList.Insert(0, word);
        }

        var result = await CliProcess.RunAsync(start, null);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("reading the input failed", result.Errors, StringComparison.Ordinal);
        Assert.Contains("0 failed", result.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Halt_on_failure_starts_no_new_job_and_lets_the_running_one_finish()
    {
        // Job 1 runs until job 2's failure is in the joblog, which is written after the halt is set.
        var jobs = Write("jobs.txt",
            "until awk -F'\\t' '$1 == 2 { found = 1 } END { exit !found }' log.tsv 2>/dev/null; do sleep 0.01; done; echo running-job-finished",
            "exit 5",
            "echo never-1", "echo never-2", "echo never-3");

        var result = await CliProcess.RunAsync(Dir, null, "run", jobs, "-j", "2", "--halt-on-failure", "--joblog", "log.tsv");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("running-job-finished", result.Output);
        Assert.DoesNotContain("never", result.Output);
        Assert.Equal([1L, 2L], ReadJobLog("log.tsv").Select(l => l.Seq).Order());
        Assert.Contains("--halt-on-failure", result.Errors);
    }

    [Fact]
    public async Task The_log_file_holds_one_structured_event_per_job()
    {
        var jobs = Write("jobs.txt", "echo a", "exit 4");

        await CliProcess.RunAsync(Dir, null, "run", jobs, "-q", "--log", "run.clef");

        var events = File.ReadAllLines(PathOf("run.clef")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        var jobEvents = events.Where(e => e.TryGetProperty("JobId", out _)).ToList();
        Assert.Equal(["1", "2"], jobEvents.Select(e => e.GetProperty("JobId").GetString()).Order(StringComparer.Ordinal));
        Assert.Contains(jobEvents, e => e.GetProperty("Outcome").GetString() == "failed" && e.GetProperty("ExitCode").GetInt32() == 4);
    }

    [Fact]
    public async Task A_second_terminal_interrupt_kills_running_jobs_which_are_not_logged_and_run_again_on_resume()
    {
        // Both presses go to the runner's whole process group, as a terminal's Ctrl-C does.
        var jobs = Write("jobs.txt", $"echo $$ > {PathOf("job-1.pid")}; sleep 60; echo slow-1", $"echo $$ > {PathOf("job-2.pid")}; sleep 60; echo slow-2");
        using var first = Process.Start(CliProcess.GroupLeaderStartInfo(Dir, "run", jobs, "-j", "2", "--joblog", "log.tsv"))!;
        first.StandardInput.Close();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var firstPressHandled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                errors.Enqueue(line);
                if (line.Contains("interrupted", StringComparison.Ordinal))
                {
                    firstPressHandled.TrySetResult();
                }
            }
        };
        first.BeginErrorReadLine();
        await Poll.UntilAsync(() => File.Exists(PathOf("job-1.pid")) && File.Exists(PathOf("job-2.pid")), TimeSpan.FromSeconds(30), "the jobs started", Tick);

        await CliProcess.SignalAsync(first.Id, "INT", wholeGroup: true);
        // Pending signals of one kind are not queued: send the second press only once the first was handled.
        await firstPressHandled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(CliScratch.IsAlive(_scratch.RecordedPid("job-1.pid")) && CliScratch.IsAlive(_scratch.RecordedPid("job-2.pid")),
            "the first Ctrl-C lets running jobs run");
        await CliProcess.SignalAsync(first.Id, "INT", wholeGroup: true);

        await first.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, first.ExitCode);
        Assert.Contains(errors, line => line.Contains("killing running jobs", StringComparison.Ordinal));
        Assert.Contains(errors, line => line.Contains("2 killed", StringComparison.Ordinal));
        Assert.Empty(ReadJobLog("log.tsv"));

        File.WriteAllLines(jobs, ["echo slow-1", "echo slow-2"]); // the same two jobs, quick this time
        var resumed = await CliProcess.RunAsync(Dir, null, "run", jobs, "--joblog", "log.tsv", "--resume", "-q");
        Assert.Equal(0, resumed.ExitCode);
        Assert.Equal(["slow-1", "slow-2"], resumed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_100k_line_input_runs_in_bounded_memory()
    {
        // 100,000 lines of about 2 KB (malformed JSON, so no process is spawned): about 200 MB of input, which held
        // at once would take some 400 MB as .NET strings. Read lazily, the run stays near its baseline (about 100 MB).
        var run = Process.Start(CliProcess.StartInfo(Dir, "run", "-", "--jsonl", "-j", "2", "-q"))!;
        var errors = run.StandardError.ReadToEndAsync();
        var output = run.StandardOutput.ReadToEndAsync();
        long peakKb = 0;
        var sampling = Task.Run(async () =>
        {
            while (!run.HasExited)
            {
                peakKb = Math.Max(peakKb, PeakResidentKb(run.Id));
                await Task.Delay(10);
            }
        });
        var filler = new string('x', 2000);
        for (var i = 0; i < 100_000; i++)
        {
            await run.StandardInput.WriteLineAsync($"{{\"cmd\": {filler}}}");
        }

        run.StandardInput.Close();
        await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        await sampling;

        Assert.Equal(101, run.ExitCode);
        Assert.Equal(100_000, (await errors).Split('\n').Count(l => l.Contains("not valid JSON", StringComparison.Ordinal)));
        Assert.Empty(await output);
        Assert.InRange(peakKb, 1, 250 * 1024);
    }

    /// <summary>The process's peak resident set (VmHWM), in kB; 0 once it has gone.</summary>
    private static long PeakResidentKb(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task An_interrupted_run_resumes_without_losing_or_repeating_a_job()
    {
        var jobs = Write("jobs.txt", Enumerable.Range(1, 10).Select(i => $"sleep 0.3; echo job-{i}").ToArray());
        var first = Process.Start(CliProcess.StartInfo(Dir, "run", jobs, "-j", "2", "--joblog", "log.tsv", "-q"))!;
        first.StandardInput.Close();
        var firstOutput = first.StandardOutput.ReadToEndAsync();
        await Poll.UntilAsync(() => JobLogLineCount() >= 3, TimeSpan.FromSeconds(30), "two jobs finished", Tick);

        await CliProcess.SignalAsync(first.Id, "INT");

        await first.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var afterInterrupt = ReadJobLog("log.tsv").Select(l => l.Seq).ToList();
        Assert.InRange(afterInterrupt.Count, 2, 9);

        var second = await CliProcess.RunAsync(Dir, null, "run", jobs, "-j", "2", "--joblog", "log.tsv", "--resume", "-q");

        Assert.Equal(0, second.ExitCode);
        var all = ReadJobLog("log.tsv").Select(l => l.Seq).ToList();
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), all.Order());
        var printed = (await firstOutput + second.Output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"job-{i}").Order(StringComparer.Ordinal), printed.Order(StringComparer.Ordinal));
    }
}
