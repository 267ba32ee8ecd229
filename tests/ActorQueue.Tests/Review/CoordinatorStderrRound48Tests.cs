using System.Net.Sockets;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 48: <c>actorqueue run --cluster</c> (the coordinator) whose stderr is a pipe that its reader holds but reads
/// nothing from (a stalled log shipper), once that pipe is full: a stop signal must still end the run with 130, as
/// <c>run --help</c> says, however stderr's reader behaves (<see cref="NodeStderrRound48Tests"/> for <c>actorqueue node</c>).
/// </summary>
[Collection(ClusterProcessesCollection.Name)]
public sealed class CoordinatorStderrRound48Tests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(60);

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A coordinator waiting for its worker node (none comes), its stderr pipe full and unread, gets SIGTERM.
    /// Failed before: "actorqueue run --cluster did not exit 60 s after SIGTERM though nobody reads its full stderr":
    /// its lines ("cluster coordinator on ...", then "interrupted while waiting for worker nodes") were written to
    /// stderr synchronously, and the run awaited a write that its reader never took. Mutants: the queue's pump writing
    /// fd 2 without giving up at the stop, and the coordinator's own lines left on the console's stderr (only Serilog's
    /// and the signal's queued), each fail it the same way.
    /// </summary>
    [Fact]
    public async Task Sigterm_ends_a_coordinator_waiting_for_nodes_whose_full_stderr_nobody_reads()
    {
        var port = TestPorts.Free();
        using var coordinator = new PipedCli(_scratch.Dir, PipeEnd.Read, PipeEnd.Held, "run", "-", "--cluster", "--min-nodes", "1",
            "--listen", $"127.0.0.1:{port}", "--insecure-loopback", "-j", "1");
        await Poll.UntilAsync(() => Listens(port) || coordinator.HasExited, ExitWithin,
            () => $"the coordinator listened on {port}", CliScratch.Tick);
        Assert.False(coordinator.HasExited, "the coordinator exited before its SIGTERM");
        Assert.True(FullPipe.Fill($"/proc/{coordinator.Pid}/fd/2") > 0, "the coordinator's stderr pipe took none of the filler");

        await CliProcess.SignalAsync(coordinator.Pid, "TERM");

        Assert.True(await coordinator.ExitsWithinAsync(ExitWithin), $"actorqueue run --cluster did not exit {ExitWithin.TotalSeconds} s after SIGTERM though nobody reads its full stderr");
        Assert.Equal(130, coordinator.ExitCode);
    }

    /// <summary>
    /// A slow but live reader (4 KiB per 100 ms) of a coordinator's stderr, whose pipe is full when SIGTERM comes while
    /// it waits for nodes: the reader gets every line, in order (the coordinator's, the signal's, the run's last), since
    /// it takes each piece well within the half second the stop allows. Passed before (the lines blocked their threads
    /// until the reader took them), and with the mutant AbandonableOutput.Grace = 0 too (the reader frees room in the
    /// pipe before the coordinator's last lines come): a guard of the lines' completeness and order, not of the grace.
    /// </summary>
    [Fact]
    public async Task A_slow_but_live_reader_gets_the_coordinators_lines_in_order_after_sigterm()
    {
        var port = TestPorts.Free();
        using var coordinator = new PipedCli(_scratch.Dir, PipeEnd.Read, PipeEnd.Paced, "run", "-", "--cluster", "--min-nodes", "1",
            "--listen", $"127.0.0.1:{port}", "--insecure-loopback", "-j", "1");
        await Poll.UntilAsync(() => coordinator.Errors.Contains("waiting for 1 worker node(s)", StringComparison.Ordinal) || coordinator.HasExited, ExitWithin,
            () => $"the coordinator said it waits; it said:\n{coordinator.Errors}", CliScratch.Tick);
        Assert.True(FullPipe.Fill($"/proc/{coordinator.Pid}/fd/2") > 0, "the coordinator's stderr pipe took none of the filler");

        await CliProcess.SignalAsync(coordinator.Pid, "TERM");

        Assert.True(await coordinator.ExitsWithinAsync(ExitWithin), $"actorqueue run --cluster did not exit {ExitWithin.TotalSeconds} s after SIGTERM");
        Assert.Equal(130, coordinator.ExitCode);
        var errors = coordinator.Errors;
        var waiting = errors.IndexOf("waiting for 1 worker node(s)", StringComparison.Ordinal);
        var signal = errors.IndexOf("actorqueue: terminated (SIGTERM): no new jobs start", StringComparison.Ordinal);
        var last = errors.IndexOf("actorqueue: interrupted while waiting for worker nodes; no job started", StringComparison.Ordinal);
        Assert.Contains("actorqueue: terminated (SIGTERM): no new jobs start", errors, StringComparison.Ordinal);
        Assert.Contains("actorqueue: interrupted while waiting for worker nodes; no job started", errors, StringComparison.Ordinal);
        Assert.True(waiting < signal && signal < last, $"the lines in order: waiting, the signal's, the run's last; stderr was:\n{errors.Replace("....", "", StringComparison.Ordinal)}");
    }

    /// <summary>Whether something accepts TCP connections on 127.0.0.1:<paramref name="port"/> (the coordinator's cluster node).</summary>
    private static bool Listens(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
