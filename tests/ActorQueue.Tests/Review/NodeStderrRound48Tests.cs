using System.Runtime.InteropServices;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 48: <c>actorqueue node</c> whose stderr is a pipe that its reader holds but reads nothing from (a stalled log
/// shipper: <c>actorqueue node ... 2&gt;&amp;1 | shipper</c>), once that pipe is full. A stop signal must still end the
/// node: it leaves the cluster and exits 130, as <c>node --help</c> says, however its stderr's reader behaves. The pipe
/// is filled by the test, as another writer into the same pipe (<c>{ tool; actorqueue node ...; } 2&gt;&amp;1 | shipper</c>,
/// or the node's own warnings over hours): what matters to the node is that the pipe is full and nobody reads it.
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class NodeStderrRound48Tests(ClusterCertificateDirectories certificates) : IDisposable, IClassFixture<ClusterCertificateDirectories>
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The node has joined and run a job (so it is Up and serving) when its stderr's pipe fills; then SIGTERM (twice, as
    /// a supervisor's second try). Failed before: "actorqueue node did not exit 60 s after SIGTERM though nobody reads its
    /// full stderr": the signal's line blocked in write(2) holding the console's lock, and the node's "leaving the
    /// cluster" line waited for that lock for ever, so the node neither left nor exited. Mutant: the queue's pump writing
    /// to fd 2 without giving up at the stop fails it (and the next test) the same way.
    /// </summary>
    [Fact]
    public Task Sigterm_ends_a_node_whose_full_stderr_nobody_reads() => WithFullStderrAsync(130, "SIGTERM", async (_, node) =>
    {
        await CliProcess.SignalAsync(node.Pid, "TERM");
        await CliProcess.SignalAsync(node.Pid, "TERM");
    });

    /// <summary>
    /// As above, with the coordinator killed after the pipe filled and before the SIGTERM: the node's Akka warns (its
    /// connection to the coordinator fails) through Serilog while the node waits for its leave, which cannot complete
    /// (at most 10 s), so Akka's logger writes to the full pipe too. The node still exits 130.
    /// Failed before: "actorqueue node did not exit 60 s after SIGTERM though nobody reads its full stderr". Mutant: the
    /// node's lines and the signal's queued, but Serilog's console sink left writing to Console.Error (Akka's logger
    /// then blocks in write(2), and the actor system never terminates): fails the same way, while the test above passes.
    /// </summary>
    [Fact]
    public Task Sigterm_ends_a_node_whose_full_stderr_nobody_reads_while_akka_warns() => WithFullStderrAsync(130, "SIGTERM", async (coordinator, node) =>
    {
        await CliProcess.SignalAsync(coordinator.Pid, "KILL");
        await CliProcess.SignalAsync(node.Pid, "TERM");
    });

    /// <summary>
    /// No signal: the coordinator leaves (its input ends) while the node's stderr is full and unread. The node's "the
    /// coordinator left; exiting" line is given up at the node's end as at the stop, and the node exits 0.
    /// Failed before: "actorqueue node did not exit 60 s after its coordinator left though nobody reads its full stderr"
    /// (the line blocked the node's exit for ever). Mutant: the queue's end without giving its writes up (only the stop
    /// does) fails it the same way.
    /// </summary>
    [Fact]
    public Task A_node_whose_full_stderr_nobody_reads_exits_when_its_coordinator_leaves() => WithFullStderrAsync(0, "its coordinator left", async (coordinator, _) =>
    {
        coordinator.Input.Close();
        Assert.Equal(0, await coordinator.ExitAsync(TimeSpan.FromSeconds(90)));
    });

    /// <summary>
    /// The reader is live but slow (4 KiB per 100 ms) and the pipe is full when SIGTERM comes: the node's lines wait
    /// behind 64 KiB that the reader takes in about 1.6 s, yet none is given up, since the reader takes each 4 KiB piece
    /// well within the half second the stop allows it. The node exits 130 and its reader gets the signal's line and the
    /// leave's. Passed before (the lines blocked their threads until the reader took them). Mutant: the node's stderr
    /// given up at once at the stop (no grace) fails it: "Assert.Contains() Failure: Sub-string not found".
    /// </summary>
    [Fact]
    public async Task A_slow_but_live_stderr_reader_gets_the_nodes_lines_after_sigterm()
    {
        var (coordinator, node) = await StartServingAsync(PipeEnd.Paced);
        using (coordinator)
        using (node)
        {
            await Poll.UntilAsync(() => node.Errors.Contains("; running up to", StringComparison.Ordinal), ExitWithin,
                () => $"the node said it joined; it said:\n{node.Errors}", CliScratch.Tick);
            FillStderr(node);
            await CliProcess.SignalAsync(node.Pid, "TERM");

            await ExitsAsync(node, 130, "SIGTERM");
            Assert.Contains("actorqueue: terminated (SIGTERM): the node stops", node.Errors, StringComparison.Ordinal);
            Assert.Contains("actorqueue node: leaving the cluster; jobs running here go back to the queue", node.Errors, StringComparison.Ordinal);
            coordinator.Input.Close();
            Assert.Equal(0, await coordinator.ExitAsync(TimeSpan.FromSeconds(90)));
        }
    }

    /// <summary>
    /// Starts a serving node whose stderr nobody reads (<see cref="PipeEnd.Held"/>), fills that pipe, does
    /// <paramref name="stop"/> to it or its coordinator, and asserts that the node then exits with <paramref name="code"/>.
    /// </summary>
    private async Task WithFullStderrAsync(int code, string after, Func<RunningCli, PipedCli, Task> stop)
    {
        var (coordinator, node) = await StartServingAsync(PipeEnd.Held);
        using (coordinator)
        using (node)
        {
            FillStderr(node);
            await stop(coordinator, node);
            await ExitsAsync(node, code, after + " though nobody reads its full stderr");
        }
    }

    /// <summary>Fills the node's stderr pipe, as another writer of it.</summary>
    private static void FillStderr(PipedCli node) =>
        Assert.True(FullPipe.Fill($"/proc/{node.Pid}/fd/2") > 0, "the node's stderr pipe took none of the filler");

    /// <summary>Asserts that the node exits with <paramref name="code"/> within <see cref="ExitWithin"/> <paramref name="after"/> what the test did.</summary>
    private static async Task ExitsAsync(PipedCli node, int code, string after)
    {
        Assert.True(await node.ExitsWithinAsync(ExitWithin), $"actorqueue node did not exit {ExitWithin.TotalSeconds} s after {after}");
        Assert.Equal(code, node.ExitCode);
    }

    /// <summary>
    /// A coordinator (<c>run - --cluster --min-nodes 1</c>) and a node whose stderr the test treats as <paramref name="stderr"/>
    /// says; returns once the node has run a job the coordinator handed it (so it is Up and serving, whatever its stderr).
    /// </summary>
    private async Task<(RunningCli Coordinator, PipedCli Node)> StartServingAsync(PipeEnd stderr)
    {
        var listen = $"127.0.0.1:{TestPorts.Free()}";
        var coordinator = new RunningCli(_scratch.Dir, "run", "-", "--cluster", "--min-nodes", "1", "--listen", listen,
            "--cert-dir", certificates.Coordinator, "-j", "1");
        PipedCli? node = null;
        try
        {
            await coordinator.WaitForErrorsAsync("waiting for 1 worker node(s)");
            node = new PipedCli(_scratch.Dir, PipeEnd.Read, stderr, "node", "--seed", listen,
                "--listen", $"127.0.0.1:{TestPorts.Free()}", "-j", "1", "--cert-dir", certificates.Worker);
            await coordinator.WaitForErrorsAsync("1 worker node(s) joined");
            await coordinator.Input.WriteLineAsync("echo ran-on-node");
            await coordinator.Input.FlushAsync();
            await Poll.UntilAsync(() => coordinator.Output.Contains("ran-on-node", StringComparison.Ordinal), ExitWithin,
                () => $"the node ran the job; the coordinator said:\n{coordinator.Errors}", CliScratch.Tick);
            return (coordinator, node);
        }
        catch
        {
            node?.Dispose();
            coordinator.Dispose();
            throw;
        }
    }
}

/// <summary>Fills a pipe to the brim, as another of its writers would: the test's own write to it never blocks.</summary>
internal static class FullPipe
{
    private const int WriteOnly = 1; // O_WRONLY

    private const int NonBlocking = 0x800; // O_NONBLOCK (Linux)

    private const int WouldBlock = 11; // EAGAIN

    /// <summary>
    /// Opens <paramref name="path"/> (a pipe: <c>/proc/PID/fd/2</c>) for writing, without blocking, and writes to it until
    /// it takes no more (4 KiB at a time, then a byte at a time for the last page's rest); returns how many bytes it took.
    /// </summary>
    public static long Fill(string path)
    {
        var descriptor = Open(path, WriteOnly | NonBlocking);
        if (descriptor < 0)
        {
            throw new IOException($"open {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        try
        {
            var filler = new byte[4096];
            Array.Fill(filler, (byte)'.');
            long taken = 0;
            foreach (var size in new[] { filler.Length, 1 })
            {
                nint written;
                while ((written = Write(descriptor, filler, size)) > 0)
                {
                    taken += written;
                }

                if (Marshal.GetLastPInvokeError() is var error and not WouldBlock)
                {
                    throw new IOException($"write {path}: {Marshal.GetPInvokeErrorMessage(error)}");
                }
            }

            return taken;
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint Write(int descriptor, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int descriptor);
}
