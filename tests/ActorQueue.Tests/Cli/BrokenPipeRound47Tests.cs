using System.Diagnostics;
using System.Text;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// <c>actorqueue run</c> whose stdout or stderr is a pipe that nobody reads any more, then stopped by a signal (a
/// supervisor closing the pipes and sending SIGTERM; <c>actorqueue run ... 2&gt;&amp;1 | head -1</c>; a reader killed
/// while a child of it still holds the pipe). The first stage's promise holds whatever the pipes do: no new job starts,
/// the running jobs finish and are recorded, and the run then exits 130.
/// </summary>
public sealed class BrokenPipeRound47Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Job 1 writes 200 KB to stderr (more than a pipe holds) and ends; job 2 runs until the test's release file exists,
    /// then prints finished-2.
    /// </summary>
    private string WriteJobs() => _scratch.Write("jobs.txt",
        $"head -c 200000 /dev/zero | tr '\\0' x >&2; touch {_scratch.PathOf("wrote-1")}",
        $"touch {_scratch.PathOf("started-2")}; until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done; echo finished-2");

    /// <summary>Starts the run with both jobs at once and waits until job 1 has written its stderr and job 2 runs.</summary>
    private async Task<PipedCli> StartAsync(PipeEnd stdout, PipeEnd stderr, string joblog = "log.tsv")
    {
        var run = new PipedCli(_scratch.Dir, stdout, stderr, "run", WriteJobs(), "-j", "2", "--joblog", joblog);
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("wrote-1")) && File.Exists(_scratch.PathOf("started-2")),
            ExitWithin, () => $"job 1 wrote its stderr and job 2 started; exited: {run.HasExited}", CliScratch.Tick);
        return run;
    }

    /// <summary>
    /// stderr's reader holds the pipe but reads nothing (a reader killed while a child of it still holds the pipe, a
    /// stopped one, a terminal's Ctrl-S): job 1's stderr, which the runner writes when job 1 ends, fills the pipe and
    /// the write blocks. A stop signal then must still end the run once job 2 has finished: stderr is the runner's best
    /// effort, so a write to it still blocked a moment after the stop is given up. Job 2's output (stdout is read) and
    /// both joblog records are kept, and the exit status is the interrupted run's.
    /// Failed before: "actorqueue did not exit 60 s after SIGTERM and job 2's end" (likewise SIGHUP and a first SIGINT;
    /// a second SIGTERM did nothing either): job 1's report held the output gate in write(2), job 2's report waited for
    /// the gate, and so did the end of the run.
    /// </summary>
    [Theory]
    [InlineData("TERM")]
    [InlineData("HUP")]
    [InlineData("INT")]
    public async Task A_stop_signal_ends_the_run_once_its_running_jobs_finish_though_nobody_reads_stderr(string signal)
    {
        using var run = await StartAsync(PipeEnd.Read, PipeEnd.Held);

        await CliProcess.SignalAsync(run.Pid, signal);
        await CliProcess.SignalAsync(run.Pid, signal == "INT" ? "TERM" : signal); // a supervisor's second try: still the first stage
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIG{signal} and job 2's end");
        Assert.Equal(130, run.ExitCode);
        Assert.Equal("finished-2\n", run.Output);
        Assert.Equal(new long[] { 1, 2 }, _scratch.ReadJobLog().Select(line => line.Seq).Order());
    }

    /// <summary>
    /// As above with the joblog on the same pipe (<c>--joblog /dev/stderr</c>), whose records are written apart from the
    /// runner's console: a record that the pipe's reader does not take is given up half a second after the stop, as a
    /// stderr line is, and its job counts as failed (as any joblog write error makes it); job 2's output is kept, and the
    /// exit status is the interrupted run's. Failed before (with the console's fix): "actorqueue did not exit 60 s after
    /// SIGTERM and job 2's end": job 1's record blocked in write(2) under the joblog's lock, job 2's record waited for
    /// the lock on a thread of its own, and so did the end of the run. Mutant: the joblog given up at the kill instead
    /// of the stop fails it the same way.
    /// </summary>
    [Fact]
    public async Task Sigterm_ends_the_run_though_nobody_reads_the_joblogs_pipe()
    {
        using var run = await StartAsync(PipeEnd.Read, PipeEnd.Held, joblog: "/dev/stderr");

        await CliProcess.SignalAsync(run.Pid, "TERM");
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIGTERM and job 2's end");
        Assert.Equal(130, run.ExitCode);
        Assert.Equal("finished-2\n", run.Output);
    }

    /// <summary>
    /// As above with stdout on a regular file (<c>actorqueue run ... &gt; out.txt</c>, stderr to a reader that reads
    /// nothing): job 2's output goes to the file, which never blocks, so the stop ends the run once job 2 has finished.
    /// Failed before the first fix: as above. Failed after it, before the second: "actorqueue did not exit 60 s after
    /// SIGTERM and job 2's end" too: stdout on a file was written through .NET's console stream, whose every write (stdout's
    /// and stderr's alike) holds one lock (Console.Out's) through write(2), and the abandoned stderr write still held it.
    /// </summary>
    [Fact]
    public async Task Sigterm_ends_the_run_with_stdout_on_a_file_though_nobody_reads_stderr()
    {
        var start = CliProcess.ThroughShell(_scratch.Dir, "exec \"$@\" > out.txt", "run", WriteJobs(), "-j", "2", "--joblog", "log.tsv");
        using var run = new PipedCli(start, PipeEnd.Read, PipeEnd.Held);
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("wrote-1")) && File.Exists(_scratch.PathOf("started-2")),
            ExitWithin, () => $"job 1 wrote its stderr and job 2 started; exited: {run.HasExited}", CliScratch.Tick);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIGTERM and job 2's end");
        Assert.Equal(130, run.ExitCode);
        Assert.Equal("finished-2\n", File.ReadAllText(_scratch.PathOf("out.txt")));
        Assert.Equal(new long[] { 1, 2 }, _scratch.ReadJobLog().Select(line => line.Seq).Order());
    }

    /// <summary>
    /// A reader that is gone (its pipe broken: every write fails with EPIPE) stops nothing by itself. stderr's reader
    /// gone: .NET's console stream drops the lines, SIGTERM stops the run as usual, and both jobs are recorded. Both
    /// readers gone (<c>actorqueue run ... 2&gt;&amp;1 | head -1</c> once head has exited): job 2's output cannot be
    /// written, so job 2 counts as failed and stays out of the joblog (--resume runs it again) while job 1, which printed
    /// nothing to stdout, is recorded. Either way the run exits 130 once job 2 has finished, not killed by the pipe.
    /// Passed before (a guard: the console's dropped EPIPE and stdout's IOException never reach the signal's handler, the
    /// job's report or the summary).
    /// </summary>
    [Theory]
    [InlineData(false, "1 2")]
    [InlineData(true, "1")]
    public async Task Sigterm_ends_the_run_once_its_running_jobs_finish_when_the_readers_are_gone(bool stdoutGone, string recorded)
    {
        using var run = await StartAsync(stdoutGone ? PipeEnd.Closed : PipeEnd.Read, PipeEnd.Closed);

        await CliProcess.SignalAsync(run.Pid, "TERM");
        File.WriteAllText(_scratch.PathOf("release"), "");

        Assert.True(await run.ExitsWithinAsync(ExitWithin), $"actorqueue did not exit {ExitWithin.TotalSeconds} s after SIGTERM and job 2's end");
        Assert.Equal(130, run.ExitCode);
        Assert.Equal(stdoutGone ? "" : "finished-2\n", run.Output);
        Assert.Equal(recorded, string.Join(' ', _scratch.ReadJobLog().Select(line => line.Seq).Order()));
    }
}

/// <summary>What the test does with the read end of one of the runner's output pipes.</summary>
internal enum PipeEnd
{
    /// <summary>Reads everything, as a live reader.</summary>
    Read,

    /// <summary>Keeps the pipe open and reads nothing: once it is full, the runner's writes block.</summary>
    Held,

    /// <summary>Closes it at once: the runner's writes fail with EPIPE.</summary>
    Closed,

    /// <summary>Reads everything, slowly (4 KiB, then a 100 ms pause), as a slow terminal or link: a live reader.</summary>
    Paced,
}

/// <summary>A started <c>actorqueue</c> whose stdout and stderr pipes the test reads, holds unread or closes (<see cref="PipeEnd"/>).</summary>
internal sealed class PipedCli : IDisposable
{
    private readonly Process _process;

    private readonly MemoryStream _output = new();

    private readonly MemoryStream _errors = new();

    private readonly Task _reading;

    public PipedCli(string workingDirectory, PipeEnd stdout, PipeEnd stderr, params string[] args)
        : this(CliProcess.StartInfo(workingDirectory, args), stdout, stderr)
    {
    }

    /// <summary>Starts <paramref name="start"/> (all three streams redirected, as <see cref="CliProcess.StartInfo"/> has them).</summary>
    public PipedCli(ProcessStartInfo start, PipeEnd stdout, PipeEnd stderr)
    {
        _process = Process.Start(start)!;
        _process.StandardInput.Close();
        _reading = Task.WhenAll(Handle(_process.StandardOutput, stdout, _output), Handle(_process.StandardError, stderr, _errors));
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>What the runner wrote to stdout (read whole once it exited), when stdout is <see cref="PipeEnd.Read"/>.</summary>
    public string Output => Encoding.UTF8.GetString(_output.ToArray());

    /// <summary>What the runner wrote to stderr so far, when stderr is <see cref="PipeEnd.Paced"/> (or read whole once it exited).</summary>
    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return Encoding.UTF8.GetString(_errors.ToArray());
            }
        }
    }

    /// <summary>Whether the runner exits within <paramref name="bound"/> (its read pipes then read to their end).</summary>
    public async Task<bool> ExitsWithinAsync(TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            await _reading.WaitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static Task Handle(StreamReader pipe, PipeEnd end, MemoryStream into)
    {
        switch (end)
        {
            case PipeEnd.Read:
                return pipe.BaseStream.CopyToAsync(into);
            case PipeEnd.Closed:
                pipe.Close();
                return Task.CompletedTask;
            case PipeEnd.Paced:
                return ReadPaced(pipe.BaseStream, into);
            default:
                return Task.CompletedTask; // held: never read, closed with the process
        }
    }

    /// <summary>
    /// A live reader's pace, not a synchronisation: it takes 4 KiB, then pauses 100 ms, until the end. On a thread of its
    /// own: on the thread pool (or xunit's context) its continuations stalled for 0.7-0.9 s now and then, which is a
    /// reader that takes nothing, and the runner rightly gave its write up.
    /// </summary>
    private static Task ReadPaced(Stream pipe, MemoryStream into)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = new Thread(() =>
        {
            try
            {
                var buffer = new byte[4096];
                int read;
                while ((read = pipe.Read(buffer)) > 0)
                {
                    lock (into)
                    {
                        into.Write(buffer, 0, read);
                    }

                    Thread.Sleep(100);
                }

                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        { IsBackground = true, Name = "paced stderr reader" };
        reader.Start();
        return done.Task;
    }
}
