using System.Diagnostics;

namespace ActorQueue.Tests.Cli;

/// <summary>Review of the job runner by helper 69.</summary>
public sealed class CliJobsReviewTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private static string Jobs(int count) => string.Concat(Enumerable.Range(1, count).Select(i => $"echo job-{i}\n"));

    private static List<string> Lines(string text) => [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries)];

    /// <summary>
    /// Writes <paramref name="text"/> into the FIFO <paramref name="fifo"/> once a reader opens it. If the run never
    /// opened it, <see cref="UnblockAsync"/> opens it for reading so the writer is not left blocked.
    /// </summary>
    private static Task FeedFifo(string fifo, string text) => Task.Run(() => File.WriteAllText(fifo, text));

    private static async Task UnblockAsync(string fifo, Task writer)
    {
        if (!writer.IsCompleted)
        {
            await using var reader = new FileStream(fifo, FileMode.Open, FileAccess.Read);
            await reader.CopyToAsync(Stream.Null);
        }

        await writer.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// A job file named by a link to a pipe (<c>producer | actorqueue run /dev/stdin</c>, or
    /// <c>actorqueue run CMD :::: /dev/stdin</c>) runs every line. Failed before: the run reported "0 jobs" and exited 0,
    /// as the job counter (for the ETA and --halt N%) checked only FileInfo.Length, the link's own, opened the pipe a
    /// second time and read the jobs away from the reader. Now only a regular file (by stat, following links) is counted.
    /// </summary>
    [Theory]
    [InlineData("job file")]
    [InlineData(":::: source")]
    public async Task Jobs_read_from_dev_stdin_on_a_pipe_all_run(string how)
    {
        string[] args = how == "job file"
            ? ["run", "/dev/stdin", "-j", "2", "-q"]
            : ["run", "-j", "2", "-q", "echo", "::::", "/dev/stdin"];
        var input = how == "job file" ? Jobs(20) : string.Concat(Enumerable.Range(1, 20).Select(i => $"job-{i}\n"));

        var result = await CliProcess.RunAsync(_scratch.Dir, input, args); // stdin is a pipe

        Assert.Equal(Enumerable.Range(1, 20).Select(i => $"job-{i}").Order(StringComparer.Ordinal), Lines(result.Output).Order(StringComparer.Ordinal));
        Assert.Equal(0, result.ExitCode);
    }

    /// <summary>
    /// <c>--halt soon,fail=50%</c> over a job file that is a FIFO is the usage error it is over stdin (a total is needed
    /// and cannot be counted), and an unknown total never halts. Failed before: the run halted at the first job that
    /// SUCCEEDED and exited 0, the other jobs never started: the unknown total was taken as 0, and 0 failed &gt;= 50% of 0.
    /// </summary>
    [Fact]
    public async Task Halt_with_a_percentage_over_a_fifo_never_halts_on_a_success()
    {
        var fifo = await _scratch.FifoAsync("jobs.fifo");
        var writer = FeedFifo(fifo, Jobs(4));

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", fifo, "-j", "1", "--halt", "soon,fail=50%");
        await UnblockAsync(fifo, writer);

        if (result.ExitCode == 255)
        {
            Assert.Empty(result.Output); // refused before any job started
            Assert.Single(Lines(result.Errors));
            Assert.Contains("--halt", result.Errors);
        }
        else
        {
            Assert.DoesNotContain("--halt soon", result.Errors);
            Assert.Equal(["job-1", "job-2", "job-3", "job-4"], Lines(result.Output));
            Assert.Equal(0, result.ExitCode);
        }
    }

    /// <summary>
    /// An empty string where a path goes (the job file, a <c>::::</c> file, <c>--joblog</c>, <c>--log</c>,
    /// <c>--state</c>, <c>--results</c>, <c>dead-letters --state</c>; easily typed as <c>--joblog "$LOG"</c> with LOG
    /// unset) is one stderr line naming the option ("--joblog needs a FILE, got ''") and exit 255. Failed before: the
    /// runner died with an unhandled ArgumentException from .NET's file APIs, a stack trace and exit 134 (SIGABRT).
    /// </summary>
    [Theory]
    [InlineData("file", "")]
    [InlineData("::::", "")]
    [InlineData("--joblog", "")]
    [InlineData("--log", "")]
    [InlineData("--state", "")]
    [InlineData("--results", "")]
    [InlineData("dead-letters --state", "")]
    public async Task An_empty_path_is_a_one_line_usage_error_before_any_job_starts(string option, string value)
    {
        var jobs = _scratch.Write("jobs.txt", "echo ran");
        var args = option switch
        {
            "file" => new[] { "run", value },
            "::::" => ["run", "echo", "::::", value],
            "dead-letters --state" => ["dead-letters", "--state", value],
            _ => ["run", jobs, option, value],
        };

        var result = await CliProcess.RunAsync(_scratch.Dir, "echo ran\n", args);

        Assert.Equal("", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Errors);
        Assert.Single(Lines(result.Errors));
        Assert.StartsWith("actorqueue: ", result.Errors);
        Assert.Equal(255, result.ExitCode);
    }

    /// <summary>
    /// <c>--results DIR</c> gives the arguments <c>''</c>, <c>.</c> and <c>..</c> directories of their own under DIR/1/
    /// (<c>''</c> keeps GNU parallel's DIR/1/ of Golden/results-layout.out; <c>.</c> and <c>..</c> are written
    /// <c>\.</c> and <c>\..</c>). Failed before: the argument became a path segment as is, so <c>''</c> and <c>.</c>
    /// both wrote DIR/1/ (the later job overwrote the earlier one's files) and <c>..</c> wrote DIR/{seq,stdout,stderr}.
    /// (The command is <c>echo "&lt;"{}"&gt;"</c>: inside double quotes the empty argument's quoting <c>''</c> would print.)
    /// </summary>
    [Fact]
    public async Task Results_of_empty_dot_and_dotdot_arguments_are_not_overwritten_or_written_outside_their_place()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-j", "1", "-q", "--results", "res", "echo \"<\"{}\">\"", ":::", "", ".", "..", "x");

        Assert.Equal(0, result.ExitCode);
        var root = _scratch.PathOf("res");
        var outputs = Directory.GetFiles(root, "stdout", SearchOption.AllDirectories).Select(File.ReadAllText).Order(StringComparer.Ordinal);
        Assert.Equal(["<..>\n", "<.>\n", "<>\n", "<x>\n"], outputs);
        Assert.Empty(Directory.GetFiles(root)); // nothing written beside DIR/1
    }

    /// <summary>
    /// A comment line with a byte that is not UTF-8 (a Latin-1 "# café", common in old job files) is skipped as the
    /// README says comment lines are. Failed before: it failed as a job ("line 1: not valid UTF-8 ... counted as failed")
    /// and the run exited 1, as JobReader decoded the line strictly before its blank/comment check; blank and comment
    /// lines are now told from their bytes first.
    /// </summary>
    [Fact]
    public async Task A_comment_line_that_is_not_utf8_is_skipped_not_failed()
    {
        File.WriteAllBytes(_scratch.PathOf("jobs.txt"), [.. "# caf"u8, 0xE9, .. " (Latin-1)\necho ok\n"u8]);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", _scratch.PathOf("jobs.txt"));

        Assert.Equal("ok\n", result.Output);
        Assert.DoesNotContain("line 1", result.Errors);
        Assert.Equal(0, result.ExitCode);
    }

    /// <summary>
    /// A replacement string whose source number does not fit an int (<c>{99999999999}</c>) is one usage line naming it
    /// and exit 255, before any job. Failed before: an unhandled OverflowException from int.Parse as the first job was
    /// filled in, a stack trace and exit 134 (SIGABRT); CommandTemplate.Parse now checks every {N}.
    /// </summary>
    [Fact]
    public async Task A_source_number_too_big_for_an_int_is_a_usage_error()
    {
        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "echo {99999999999}", ":::", "a", "b");

        Assert.DoesNotContain("Unhandled exception", result.Errors);
        Assert.Single(Lines(result.Errors));
        Assert.Contains("{99999999999}", result.Errors);
        Assert.Equal(255, result.ExitCode);
    }

    /// <summary>
    /// A job file saved with a UTF-8 byte order mark before a comment first line counts its jobs right for --halt N%
    /// (and the ETA): with 2 jobs and --halt soon,fail=50% the run halts on job 1 (1 of 2) and exits 50. Failed before:
    /// the job counter kept the BOM the reader strips, counted "\uFEFF# jobs" as a third job, and the run did not halt
    /// (1 of 3 is below 1.5). The counter now skips lines by the reader's own rule.
    /// </summary>
    [Fact]
    public async Task A_byte_order_mark_before_a_comment_does_not_count_as_a_job_for_halt_percentages()
    {
        File.WriteAllBytes(_scratch.PathOf("jobs.txt"), [0xEF, 0xBB, 0xBF, .. "# jobs\nexit 1\necho never\n"u8]);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", _scratch.PathOf("jobs.txt"), "-j", "1", "--halt", "soon,fail=50%");

        Assert.Contains("--halt soon: job 1 failed", result.Errors); // (whether job 2 slipped in is another race)
        Assert.Equal(50, result.ExitCode);
    }

    /// <summary>
    /// Held up: timeouts that race the jobs' own exits (each job sleeps as long as its timeout) give every job one
    /// outcome: in the joblog either exited 0 or killed at the timeout (-1, signal 9), and the exit status and the
    /// summary's failed count both equal the number of timed-out jobs.
    /// </summary>
    [Fact]
    public async Task Timeouts_racing_normal_exits_agree_in_the_joblog_the_summary_and_the_exit_status()
    {
        var jobs = _scratch.Write("jobs.txt", [.. Enumerable.Range(1, 24).Select(i => $"sleep 0.2; echo job-{i}")]);

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "8", "--timeout", "200ms", "--joblog", "log.tsv");

        var log = _scratch.ReadJobLog();
        Assert.Equal(Enumerable.Range(1, 24).Select(i => (long)i), log.Select(l => l.Seq).Order());
        Assert.All(log, l => Assert.Contains((l.Exit, l.Signal), new[] { (0, 0), (-1, 9) }));
        var timedOut = log.Count(l => l.Signal == 9);
        var because = $"exit {result.ExitCode}, {timedOut} timed out in the joblog:\n{File.ReadAllText(_scratch.PathOf("log.tsv"))}\n{result.Errors}";
        Assert.True(timedOut == result.ExitCode, because);
        Assert.True(result.Errors.Contains($"{24 - timedOut} succeeded, {timedOut} failed", StringComparison.Ordinal), because);
    }

    /// <summary>
    /// Held up: a runner killed with SIGKILL mid-run and resumed with its joblog finishes every job, and no job the
    /// first run logged runs again (jobs running at the kill may run twice, as the README says).
    /// </summary>
    [Fact]
    public async Task A_run_killed_with_sigkill_resumes_without_losing_a_job_or_rerunning_a_logged_one()
    {
        var runs = _scratch.PathOf("runs.txt");
        var go = _scratch.PathOf("go");
        // Jobs after the fourth wait for the go file, made only after the kill: the first run cannot finish before it (with
        // 0.2 s jobs it once did, when the test's poll was late on a loaded machine, and the kill found no process).
        var jobs = _scratch.Write("jobs.txt", [.. Enumerable.Range(1, 12).Select(i =>
            $"echo {i} >> {runs}; sleep 0.2; if [ {i} -gt 4 ]; then until [ -f {go} ]; do sleep 0.02; done; fi; echo job-{i}")]);
        using (var first = new RunningCli(_scratch.Dir, "run", jobs, "-j", "3", "--joblog", "log.tsv", "-q"))
        {
            await Poll.UntilAsync(() => _scratch.JobLogLineCount() >= 5, TimeSpan.FromSeconds(60), "four jobs were logged", CliScratch.Tick);
            await CliProcess.SignalAsync(first.Pid, "KILL"); // the runner only: its running jobs go on unwatched
            Assert.NotEqual(0, await first.ExitAsync());
        }

        File.WriteAllText(go, "");

        var text = File.ReadAllText(_scratch.PathOf("log.tsv"));
        var logged = text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split('\t')[0]).ToList();
        Assert.True(logged.Count >= 4, text);
        var second = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "3", "--joblog", "log.tsv", "--resume", "-q");

        Assert.Equal(0, second.ExitCode);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), _scratch.ReadJobLog().Select(l => l.Seq).Order());
        var ran = File.ReadAllLines(runs);
        Assert.All(logged, seq => Assert.Single(ran, seq));
        Assert.All(Enumerable.Range(1, 12), i => Assert.Contains(i.ToString(System.Globalization.CultureInfo.InvariantCulture), ran));
    }

    /// <summary>
    /// <c>--joblog /dev/stdout</c> (also /dev/fd/1, /proc/self/fd/1) while stdout is a regular file is a one-line usage
    /// error (exit 255, before any job), as <c>--joblog -</c> is. Failed before: the joblog re-opened the file
    /// (truncating it) at an offset of its own while job output went through fd 1's, so each overwrote the other, exit 0;
    /// only the literal "-" was refused. Now a joblog or log that is stdout's file or pipe (by device and inode) is.
    /// </summary>
    [Fact]
    public async Task A_joblog_that_is_the_file_on_stdout_is_refused_or_kept_whole()
    {
        var jobs = _scratch.Write("jobs.txt", [.. Enumerable.Range(1, 6).Select(i => $"echo output-line-{i}")]);
        var start = new ProcessStartInfo("sh") { WorkingDirectory = _scratch.Dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { "-c", "exec \"$@\" > out.txt", "sh", "dotnet", CliProcess.DllPath, "run", jobs, "-j", "1", "-q", "--joblog", "/dev/stdout" })
        {
            start.ArgumentList.Add(arg);
        }

        var result = await CliProcess.RunAsync(start, null);

        var written = File.ReadAllLines(_scratch.PathOf("out.txt"));
        if (result.ExitCode == 255)
        {
            Assert.Empty(written); // refused before any job started
            Assert.Single(Lines(result.Errors));
        }
        else
        {
            Assert.Equal(0, result.ExitCode);
            Assert.Contains(CliScratch.JobLogHeader, written);
            Assert.All(Enumerable.Range(1, 6), i => Assert.Contains($"output-line-{i}", written));
            Assert.All(Enumerable.Range(1, 6), i => Assert.Single(written, l => l.StartsWith($"{i}\t:\t", StringComparison.Ordinal) && l.EndsWith($"echo output-line-{i}", StringComparison.Ordinal)));
        }
    }

    /// <summary>
    /// <c>--joblog /dev/stderr</c> while stderr is a regular file is a one-line usage error (exit 255, before any job),
    /// as <c>/dev/stdout</c> is: the joblog would re-open the file (truncating it) and write at an offset of its own
    /// while the jobs' errors and the command's log go through fd 2's. Failed before (left alone last session): exit 0,
    /// the file held what was written last at each offset.
    /// </summary>
    [Fact]
    public async Task A_joblog_that_is_the_file_on_stderr_is_refused()
    {
        var jobs = _scratch.Write("jobs.txt", [.. Enumerable.Range(1, 4).Select(i => $"echo error-line-{i} >&2")]);
        var start = new ProcessStartInfo("sh") { WorkingDirectory = _scratch.Dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { "-c", "exec \"$@\" 2> err.txt", "sh", "dotnet", CliProcess.DllPath, "run", jobs, "-j", "1", "--joblog", "/dev/stderr" })
        {
            start.ArgumentList.Add(arg);
        }

        var result = await CliProcess.RunAsync(start, null);

        var written = File.ReadAllLines(_scratch.PathOf("err.txt"));
        Assert.Equal(255, result.ExitCode);
        Assert.Contains("standard error", Assert.Single(written), StringComparison.Ordinal);
        Assert.DoesNotContain(written, line => line.Contains("error-line-", StringComparison.Ordinal));
    }

    /// <summary>
    /// The <c>--joblog -</c> usage error advises <c>/dev/stderr</c>, and following it works while stderr is a pipe (CI,
    /// <c>2&gt;&amp;1 | tee</c>, a container's log): only a regular file on stderr is refused. Failed before (re-read of the
    /// stderr check, helper 79): the check refused stderr's pipe too, so the tool's own advice was a usage error.
    /// </summary>
    [Fact]
    public async Task The_alternative_the_joblog_dash_error_suggests_is_accepted_on_a_pipe()
    {
        var dash = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--joblog", "-", "echo {}", ":::", "a");
        Assert.Equal(255, dash.ExitCode);
        Assert.Contains("/dev/stderr", dash.Errors, StringComparison.Ordinal);

        var followed = await CliProcess.RunAsync(_scratch.Dir, null, "run", "-q", "--joblog", "/dev/stderr", "echo {}", ":::", "a");

        Assert.True(followed.ExitCode == 0, $"--joblog /dev/stderr onto a pipe: exit {followed.ExitCode}: {followed.Errors}");
        Assert.Contains("echo a", followed.Errors, StringComparison.Ordinal); // the joblog record, on stderr's pipe
    }

    /// <summary>
    /// A <c>:::</c> argument (or any argument) holding bytes that are not UTF-8 is a usage error naming it, as such a
    /// line of a job file or <c>::::</c> file fails. Failed before: <c>run 'printf %s {}' ::: $'caf\xe9'</c> passed
    /// "caf" + U+FFFD (ef bf bd) to the shell and exited 0, as the .NET host decodes argv leniently before Main; the raw
    /// bytes are now checked in /proc/self/cmdline (where there is one).
    /// </summary>
    [Fact]
    public async Task An_argument_that_is_not_utf8_never_runs_altered()
    {
        var start = new ProcessStartInfo("sh") { WorkingDirectory = _scratch.Dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { "-c", "exec dotnet \"$0\" run -k -q 'printf %s {} | od -An -tx1' ::: \"$(printf 'caf\\351')\" ok", CliProcess.DllPath })
        {
            start.ArgumentList.Add(arg);
        }

        var result = await CliProcess.RunAsync(start, null);

        Assert.DoesNotContain("ef bf bd", result.Output); // U+FFFD: the command ran with other bytes than given
        Assert.NotEqual(0, result.ExitCode);
    }

    /// <summary>
    /// <c>actorqueue run - &lt;&amp;-</c> (jobs from stdin, stdin closed, as under some service managers) is a usage
    /// error at once. Failed before: it ran no job and waited for ever, reading a pipe the .NET runtime had opened for
    /// itself on the free fd 0. Now an fd 0 that is close-on-exec (opened by this process, never inherited) is closed.
    /// </summary>
    [Fact]
    public async Task Jobs_from_a_closed_stdin_end_the_run_instead_of_waiting_for_ever()
    {
        var start = new ProcessStartInfo("sh") { WorkingDirectory = _scratch.Dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-c", "exec dotnet \"$0\" run - -q <&-", CliProcess.DllPath })
        {
            start.ArgumentList.Add(arg);
        }

        using var run = Process.Start(start)!;
        var errors = run.StandardError.ReadToEndAsync();
        var output = run.StandardOutput.ReadToEndAsync();
        using var generous = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // a run with no input ends in well under a second
        var exited = await run.WaitForExitAsync(generous.Token).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default);
        if (!exited)
        {
            run.Kill(entireProcessTree: true);
        }

        Assert.True(exited, $"actorqueue run - with stdin closed was still waiting after 30 s: {await errors}");
        Assert.Equal("", await output);
        Assert.Contains(run.ExitCode, new[] { 0, 255 });
    }
}
