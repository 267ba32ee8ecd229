using System.Diagnostics;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// Review of the CLI commits 937175a..d9072a5 (stdin pipe as joblog, --delay in input order, exit statuses): each test
/// reproduces a defect found in review and fails on the code it was written against.
/// </summary>
public sealed class CliReviewTests : IDisposable
{
    private readonly CliScratch _scratch = new();

    /// <summary>A scratch directory on /dev/shm (tmpfs: regular files whose path starts with /dev/).</summary>
    private readonly string _shm = Path.Combine("/dev/shm", $"actorqueue-review-{Guid.NewGuid():N}");

    public CliReviewTests() => Directory.CreateDirectory(_shm);

    public void Dispose()
    {
        _scratch.Dispose();
        try
        {
            Directory.Delete(_shm, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    private string Dir => _scratch.Dir;

    /// <summary>Runs <c>actorqueue ARGS... &lt; stdinFile</c> through sh, so stdin is the regular file itself (not a pipe).</summary>
    private Task<CliResult> RunWithStdinFromAsync(string stdinFile, params string[] args)
    {
        var start = new ProcessStartInfo("sh")
        {
            WorkingDirectory = Dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("f=\"$1\"; shift; exec dotnet \"$@\" < \"$f\"");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(stdinFile);
        start.ArgumentList.Add(CliProcess.DllPath);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return CliProcess.RunAsync(start, null);
    }

    /// <summary>
    /// A regular file redirected on stdin is protected from --joblog only when its path does not start with /dev/:
    /// FileIdentity takes every /dev/... target of /proc/self/fd/0 for a device, but /dev/shm is tmpfs. The joblog then
    /// truncates the job file it reads, and the joblog's own header line runs as a shell command.
    /// </summary>
    [Fact]
    public async Task A_joblog_that_is_the_regular_file_on_stdin_is_refused_even_under_dev_shm()
    {
        var jobs = Path.Combine(_shm, "jobs.txt");
        await File.WriteAllTextAsync(jobs, "echo one\necho two\n");

        var result = await RunWithStdinFromAsync(jobs, "run", "--joblog", jobs);

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}; stderr: {result.Errors}; the job file now holds: {await File.ReadAllTextAsync(jobs)}");
        Assert.Equal("echo one\necho two\n", await File.ReadAllTextAsync(jobs));
    }

    /// <summary>
    /// The same for --log: the JSON log lines appended to the job file being read come back as jobs and run as shell
    /// commands (the feedback loop f9cd8c0 closed for a pipe, open for a regular file under /dev/shm).
    /// </summary>
    [Fact]
    public async Task A_log_that_is_the_regular_file_on_stdin_is_refused_even_under_dev_shm()
    {
        var jobs = Path.Combine(_shm, "jobs.txt");
        await File.WriteAllTextAsync(jobs, "echo one\necho two\n");

        var result = await RunWithStdinFromAsync(jobs, "run", "-j", "1", "--log", jobs);

        Assert.True(result.ExitCode == 255, $"exit {result.ExitCode}; stderr: {result.Errors}");
        Assert.Equal("echo one\necho two\n", await File.ReadAllTextAsync(jobs));
    }

    /// <summary>
    /// The usage error for a --joblog that is the file on stdin names the input as '-', not the --joblog value the
    /// user gave, so the line does not say which of the user's paths is wrong.
    /// </summary>
    [Fact]
    public async Task A_joblog_that_is_the_file_on_stdin_is_refused_naming_the_joblog_value()
    {
        var jobs = _scratch.Write("jobs.txt", "echo one");

        var result = await RunWithStdinFromAsync(jobs, "run", "--joblog", "jobs.txt");

        Assert.Equal(255, result.ExitCode);
        var line = Assert.Single(result.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--joblog 'jobs.txt'", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// GNU parallel's <c>--joblog -</c> writes the joblog to stdout; actorqueue silently creates a file named '-' in the
    /// working directory (and a later --resume reads it back from there).
    /// </summary>
    [Fact]
    public async Task Joblog_dash_is_stdout_as_in_gnu_parallel_or_refused_never_a_file_named_dash()
    {
        var result = await CliProcess.RunAsync(Dir, null, "run", "--joblog", "-", "echo", ":::", "a");

        Assert.False(File.Exists(_scratch.PathOf("-")), $"a file named '-' was created; exit {result.ExitCode}; stdout: {result.Output}");
        Assert.True(result.ExitCode == 255 || result.Output.Contains(CliScratch.JobLogHeader, StringComparison.Ordinal),
            $"exit {result.ExitCode}; stdout: {result.Output}");
    }

    /// <summary>
    /// With --delay a job waiting for its --limit tag's slot holds the turn, so every later job waits with -j slots
    /// free. Without --delay the untagged job runs at once; with it the run stalls until the tagged job gives up.
    /// Here job 1 (tag x) waits for job 3 (untagged) to create a marker; job 2 (tag x) waits for job 1's x slot
    /// holding the turn; job 3 waits for the turn: a cycle that only job 1's own give-up (about 10 s) breaks.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Delay_never_makes_free_slots_wait_behind_a_job_waiting_for_its_tag(bool delay)
    {
        var jobs = _scratch.Write("jobs.jsonl",
            """{"id": "waits", "cmd": "for i in $(seq 100); do [ -f marker ] && exit 0; sleep 0.1; done; exit 7", "tags": ["x"]}""",
            """{"id": "second-x", "cmd": "true", "tags": ["x"]}""",
            """{"id": "untagged", "cmd": "touch marker"}""");
        string[] args = ["run", jobs, "--jsonl", "-j", "3", "--limit", "x=1", "--joblog", "log.tsv", "-q"];

        var result = await CliProcess.RunAsync(Dir, null, delay ? [.. args, "--delay", "0.01"] : args);

        var log = _scratch.ReadJobLog("log.tsv");
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}; stderr: {result.Errors}; joblog (seq:exit): {string.Join(' ', log.Select(l => $"{l.Seq}:{l.Exit}"))}");
        Assert.Equal(0, log.Single(l => l.Seq == 1).Exit);
    }

    /// <summary>
    /// A socket on both stdin and stdout (socat EXEC:, inetd, systemd socket activation): what is written to it goes to
    /// the peer and never comes back as input, but f9cd8c0 counts any socket on stdin as "the pipe on stdin", so
    /// <c>--joblog /dev/stdout</c> was refused as "the job input".
    /// </summary>
    [Fact]
    public async Task A_socket_on_stdin_and_stdout_is_not_taken_for_the_stdin_pipe()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec 3<>/dev/tcp/127.0.0.1/{port}; exec dotnet \"$0\" run - --joblog /dev/stdout <&3 >&3 3>&-");
        start.ArgumentList.Add(CliProcess.DllPath);
        var running = CliProcess.RunAsync(start, null);

        using var peer = await listener.AcceptSocketAsync();
        await peer.SendAsync("echo hi\n"u8.ToArray());
        peer.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            while (await peer.ReceiveAsync(buffer) is var n and > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // The CLI closed the socket (refused and exited): the exit status says so below.
        }

        var result = await running;

        // Not mistaken for the stdin pipe. (Linux refuses to open a socket by its /proc path, ENXIO, so the joblog itself
        // cannot be written there: that is the refusal left, one line naming the option.)
        Assert.DoesNotContain("is the job input", result.Errors, StringComparison.Ordinal);
        Assert.True(result.ExitCode == 0 || result.Errors.Contains("--joblog: cannot write '/dev/stdout'", StringComparison.Ordinal),
            $"exit {result.ExitCode}; stderr: {result.Errors}");
    }

    /// <summary>
    /// The run help's exit statuses put "a job whose output could not be written" under 1-100 (counted as failed),
    /// but since d9072a5 such a run exits 255 (stopped by its own failure): the help contradicts itself and the CLI, and
    /// JobAttemptTests.Output_that_cannot_be_written_fails_the_job_keeps_it_out_of_the_joblog_and_stops_the_run (which
    /// asserts exit 1) fails since d9072a5.
    /// </summary>
    [Fact]
    public async Task The_help_says_the_exit_status_a_run_with_unwritable_output_gets()
    {
        var help = await CliProcess.RunAsync(Dir, null, "run", "--help");
        var text = string.Join(' ', help.Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        var start = text.IndexOf("1-100", StringComparison.Ordinal);
        var failedClause = text[start..text.IndexOf("; with --halt", start, StringComparison.Ordinal)];

        var full = _scratch.Write("full.sh", $"exec dotnet \"{CliProcess.DllPath}\" run echo ::: a b > /dev/full");
        var run = await CliProcess.RunAsync(new ProcessStartInfo("sh", [full])
        {
            WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        }, null);

        Assert.Equal(255, run.ExitCode);
        Assert.DoesNotContain("output could not be written", failedClause, StringComparison.Ordinal);
    }
}
