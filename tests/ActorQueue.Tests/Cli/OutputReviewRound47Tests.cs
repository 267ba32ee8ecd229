using System.IO.Pipes;
using ActorQueue.Cli.Jobs;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// Review of the round-47 output changes: stdout on a regular file written with write(2) by DescriptorOutput, and
/// stderr's writes given up half a second after a stop signal when its reader does not take them.
/// </summary>
public sealed class OutputReviewRound47Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// <c>actorqueue run ... &gt; out.txt 2&gt;&amp;1</c> (and <c>&gt;&gt;</c>, which appends): stdout (DescriptorOutput's
    /// write(2) on fd 1) and stderr (the console's stream on fd 2) share one file offset, so every job's output, its
    /// stderr, the runner's failure lines and the summary land in the order they were written, none over another, and
    /// an appended run keeps what the file held. Covers a job whose output has no final newline and one past the copy
    /// buffer (100 000 bytes, more than 64 KiB). Passed before (a guard: a stdout written at its own offset, as a
    /// FileStream on fd 1 writes, overwrote stderr's lines; mutant tried: JobOutput returning that FileStream for a
    /// regular file too, which failed this test).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stdout_and_stderr_on_one_file_keep_every_line_in_order(bool append)
    {
        var big = new string('a', 100_000);
        var jobs = _scratch.Write("jobs.txt",
            "echo out-1; echo err-1 >&2",
            "printf out-2; exit 3",
            "head -c 100000 /dev/zero | tr '\\0' a; echo; echo err-3 >&2");
        var redirect = append ? ">>" : ">";
        File.WriteAllText(_scratch.PathOf("out.txt"), "before\n");

        var result = await CliProcess.RunAsync(CliProcess.ThroughShell(_scratch.Dir, $"exec \"$@\" {redirect} out.txt 2>&1", "run", jobs, "-j", "1"), stdin: null);

        Assert.Equal(1, result.ExitCode);
        var lines = File.ReadAllText(_scratch.PathOf("out.txt")).Split('\n');
        var expected = (append ? new[] { "before" } : []).Concat(
        [
            "out-1",
            "err-1",
            "out-2actorqueue: job 2 failed: exited with 3: printf out-2; exit 3",
            big,
            "err-3",
        ]).ToArray();
        Assert.Equal(expected, lines.Take(expected.Length).ToArray());
        Assert.StartsWith("actorqueue: 3 jobs in ", lines[expected.Length], StringComparison.Ordinal);
        Assert.Equal([""], lines.Skip(expected.Length + 1).ToArray());
    }

    /// <summary>
    /// A stderr reader that reads, only slowly (4 KiB every 100 ms: a slow terminal or link, a rate-limited logger), is
    /// no reader that "does not take" a write: after SIGTERM the running jobs finish, and their stderr (200 000 bytes),
    /// the "job N failed" lines and the summary must all reach it, however long that takes; the exit status is 130.
    /// Failed before: Assert.Contains() Failure: Sub-string not found ("actorqueue: job 1 failed"): a 64 KiB write after
    /// the stop that this reader took in 1.6 s was given up after 0.5 s, and with it every later line (only ~110 KB of
    /// stderr arrived, no summary). Mutant tried: the pieces' size back to the whole write (fails likewise).
    /// </summary>
    [Fact]
    public async Task A_slow_but_live_stderr_reader_gets_every_line_after_a_stop()
    {
        var go = _scratch.PathOf("go");
        var jobs = _scratch.Write("jobs.txt",
            $"touch {_scratch.PathOf("started-1")}; until [ -e {go} ]; do sleep 0.02; done; head -c 200000 /dev/zero | tr '\\0' e >&2; echo out-1; exit 1",
            $"touch {_scratch.PathOf("started-2")}; until [ -e {go} ]; do sleep 0.02; done; echo out-2; exit 2");
        using var run = new PipedCli(_scratch.Dir, PipeEnd.Read, PipeEnd.Paced, "run", jobs, "-j", "2", "--joblog", "log.tsv");
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started-1")) && File.Exists(_scratch.PathOf("started-2")),
            ExitWithin, () => $"both jobs started; exited: {run.HasExited}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        await Poll.UntilAsync(() => run.Errors.Contains("terminated (SIGTERM)", StringComparison.Ordinal),
            ExitWithin, () => $"the stop was said; stderr so far: {run.Errors}", CliScratch.Tick);
        File.WriteAllText(go, "");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIGTERM");
        var errors = run.Errors;
        Assert.Contains("actorqueue: job 1 failed", errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue: job 2 failed", errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue: 2 jobs in ", errors, StringComparison.Ordinal);
        Assert.Contains(new string('e', 200_000), errors.Split('\n'));
        Assert.Equal(130, run.ExitCode);
        Assert.Equal(new long[] { 1, 2 }, _scratch.ReadJobLog().Select(line => line.Seq).Order());
    }

    /// <summary>
    /// stdout on a file is written by DescriptorOutput, and a file's write can hang (a frozen filesystem, a dead NFS
    /// server): the kill must still give it up, as it gives up any stdout write (AbandonableOutput), so the run ends.
    /// Here the descriptor is a pipe nobody reads, which hangs write(2) the same way. Failed before: "Assert.Throws()
    /// Failure: Exception type was not an exact match ... Expected: typeof(System.IO.IOException) Actual:
    /// typeof(System.TimeoutException)": DescriptorOutput.WriteAsync wrote on its caller's thread, so
    /// AbandonableOutput's WriteAsync never returned a task to give up (by hand: stdout on an fsfrozen ext4, SIGQUIT,
    /// and the run went on until the thaw). Mutant tried: WriteAsync back to the caller's thread (fails likewise).
    /// </summary>
    [Fact]
    public async Task The_kill_gives_up_a_descriptor_write_that_hangs()
    {
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var reader = new AnonymousPipeClientStream(PipeDirection.In, pipe.ClientSafePipeHandle);
        var bytes = new byte[1 << 20]; // more than a pipe holds, and nobody reads yet
        using var kill = new CancellationTokenSource();
        var output = new AbandonableOutput(new DescriptorOutput((int)pipe.SafePipeHandle.DangerousGetHandle()), kill.Token);
        var writing = Task.Run(() => output.WriteAsync(bytes).AsTask());
        try
        {
            await kill.CancelAsync();
            var abandoned = await Assert.ThrowsAsync<IOException>(() => writing.WaitAsync(ExitWithin));
            Assert.Contains("abandoned", abandoned.Message, StringComparison.Ordinal);
        }
        finally
        {
            // The abandoned write still runs: take all it writes, so its thread is free again.
            var buffer = new byte[64 * 1024];
            for (var taken = 0; taken < bytes.Length;)
            {
                taken += await reader.ReadAsync(buffer).AsTask().WaitAsync(ExitWithin);
            }
        }
    }

    /// <summary>
    /// stdout on <c>/dev/full</c> (a character device that lseek accepts, so DescriptorOutput writes it: ENOSPC): the
    /// job whose output cannot be written counts as failed and the run stops (exit 255), and what the job wrote to
    /// stderr still reaches stderr, before the line that says its output was lost. Failed before:
    /// "Assert.Contains() Failure: Sub-string not found ... Not found: "err-1"": WriteJobAsync wrote the job's stderr
    /// only after its stdout, so a failed stdout write lost it silently. Mutant tried: the stderr copy back after the
    /// stdout copy, outside a finally (fails likewise).
    /// </summary>
    [Fact]
    public async Task A_job_whose_stdout_cannot_be_written_still_has_its_stderr_shown()
    {
        var jobs = _scratch.Write("jobs.txt", "echo out-1; echo err-1 >&2");

        var result = await CliProcess.RunAsync(CliProcess.ThroughShell(_scratch.Dir, "exec \"$@\" > /dev/full", "run", jobs), stdin: null);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains("err-1", result.Errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue: job 1: its output could not be written (No space left on device)", result.Errors, StringComparison.Ordinal);
        Assert.True(result.Errors.IndexOf("err-1", StringComparison.Ordinal) < result.Errors.IndexOf("its output could not be written", StringComparison.Ordinal), result.Errors);
    }
}
