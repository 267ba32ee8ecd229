namespace ActorQueue.Tests.Cli;

/// <summary>
/// Round 50: <c>actorqueue run</c> whose stdout is a pipe set O_NONBLOCK by whoever shares it (a parent that sets it on
/// its stdio, as node.js does): once the pipe is full, write(2) says EAGAIN instead of waiting for the reader. stderr's
/// writer waited for such a pipe since round 49; the jobs' output did not.
/// </summary>
public sealed class NonBlockingStdoutRound50Tests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private const int JobBytes = 100_000;

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// 20 jobs, 4 at a time, each printing 100 KB of its own letter; stdout's pipe is filled by the test to all but 4 KiB
    /// before the run starts, and its reader begins only once the runner's first write has filled it (FIONREAD: the pipe
    /// holds all it can), so the runner's next write(2) meets a full pipe. Every byte arrives, each job's whole, and the
    /// run exits 0 with all 20 succeeded.
    /// Failed before: "Assert.Equal() Failure: Values differ Expected: 2000000 Actual: 269632" (the job bytes read; the
    /// number varies): stdout was a file stream, which took the EAGAIN for a failure of stdout, so the job failed, the
    /// run stopped ("stdout cannot be written") and exited 255. Mutant: DescriptorOutput's EAGAIN thrown as an error
    /// (round 48's code) fails it the same way ("Actual: 169632").
    /// </summary>
    [Fact]
    public async Task Every_byte_reaches_a_non_blocking_stdout_whose_reader_starts_once_it_is_full()
    {
        var letters = Enumerable.Range(0, 20).Select(i => (char)('a' + i)).ToArray();
        var jobs = _scratch.Write("jobs.txt", [.. letters.Select(letter => $"yes {letter} | head -c {JobBytes}")]);
        using var run = SpawnedCli.Start(_scratch.Dir, _scratch.PathOf("errors.txt"), room: 4096, "run", jobs, "-j", "4");
        var filler = run.Capacity - 4096;

        await Poll.UntilAsync(() => run.Unread == run.Capacity, Bound,
            () => $"the runner filled stdout's pipe; it holds {run.Unread} of {run.Capacity} bytes", CliScratch.Tick);
        var output = new MemoryStream();
        await run.Output.CopyToAsync(output).WaitAsync(Bound);
        var code = await run.ExitCode.WaitAsync(Bound);

        var bytes = output.ToArray();
        var errors = File.ReadAllText(_scratch.PathOf("errors.txt"));
        Assert.Equal(letters.Length * JobBytes, bytes.Length - filler);
        Assert.True(code == 0, $"exit {code}; stderr:\n{errors}");
        Assert.All(bytes.Take(filler), b => Assert.Equal((byte)'.', b));
        var text = System.Text.Encoding.ASCII.GetString(bytes, filler, bytes.Length - filler);
        foreach (var letter in letters)
        {
            // "x\n" 50000 times, in one piece: from its first letter to its last, nothing else.
            var (first, last) = (text.IndexOf(letter, StringComparison.Ordinal), text.LastIndexOf(letter));
            Assert.True(first >= 0 && last - first == JobBytes - 2 && text.Count(c => c == letter) == JobBytes / 2,
                $"job '{letter}' printed its {JobBytes} bytes in one piece");
        }

        Assert.Contains("20 succeeded, 0 failed", errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// The same pipe full and never read: the finished job's output waits for the reader (in poll(2)) as on a blocking
    /// pipe, until the kill, which gives the write up as it gives up a blocked one: SIGTERM (the first stage, after
    /// which stdout's reader still gets finished jobs' output), then SIGQUIT; the run exits 130 and says the output was
    /// given up. Passed before (the EAGAIN failed the job at once, so the run ended by itself or at the signal with 130).
    /// Mutant: DescriptorOutput's write done on its caller's thread (no task the kill can give up) fails it: "the run did
    /// not exit 90 s after SIGTERM and SIGQUIT".
    /// </summary>
    [Fact]
    public async Task The_kill_ends_a_run_whose_non_blocking_stdout_nobody_reads()
    {
        var jobs = _scratch.Write("jobs.txt", $"yes a | head -c {JobBytes}; touch {_scratch.PathOf("ran-1")}", "echo never");
        using var run = SpawnedCli.Start(_scratch.Dir, _scratch.PathOf("errors.txt"), room: 0, "run", jobs, "-j", "1");

        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("ran-1")), Bound, "job 1 ran", CliScratch.Tick);
        await CliProcess.SignalAsync(run.Pid, "TERM");
        await CliProcess.SignalAsync(run.Pid, "QUIT");

        Assert.True(await Poll.CompletesWithin(run.ExitCode, Bound), $"the run did not exit {Bound.TotalSeconds} s after SIGTERM and SIGQUIT");
        var errors = File.ReadAllText(_scratch.PathOf("errors.txt"));
        Assert.True(await run.ExitCode == 130, $"exit {await run.ExitCode}; stderr:\n{errors}");
    }
}
