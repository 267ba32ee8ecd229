using ActorQueue.Cli.Commands;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 49, an adversarial review of the process's one stderr queue (<see cref="QueuedStderr"/>): what a reader that
/// reads nothing does to a text written after the queue's end.
/// </summary>
public sealed class StderrAdversarialRound49Tests
{
    /// <summary>
    /// The queue closed by its synchronous <c>Dispose</c> (a <c>using</c>, <c>Console.Error.Close()</c>) while its
    /// reader reads nothing and no stop ever comes: a text written after it is written at once (<c>WriteLate</c>), which
    /// waits for the pump, and the pump's write waited for that reader for ever, so the writer's thread (holding
    /// <c>Console.Error</c>'s lock, so every later line's too) was blocked for good. Now the end gives the writes up as
    /// <c>DisposeAsync</c> does: the late text is given up (counted in <see cref="QueuedStderr.Lost"/>) and the writer
    /// goes on.
    /// Failed before: "the late line's writer is still blocked" (Assert.True() Failure). Mutant: Dispose completing the
    /// queue without giving the writes up (the code before) fails it the same way.
    /// </summary>
    [Fact]
    public async Task A_line_after_a_synchronous_dispose_does_not_wait_for_a_reader_that_reads_nothing()
    {
        var reader = new GatedStream(open: false);
        var stderr = new QueuedStderr(reader, CancellationToken.None);
        stderr.WriteLine("queued");
        stderr.Dispose();

        var late = Task.Run(() => stderr.WriteLine("late"));

        Assert.True(await Task.WhenAny(late, Task.Delay(TimeSpan.FromSeconds(30))) == late, "the late line's writer is still blocked");
        Assert.Equal(1, stderr.Lost);
        Assert.Equal(0, stderr.QueuedBytes);
    }
}

/// <summary>Round 49: fd 2 written with write(2) (<see cref="ActorQueue.Cli.Jobs.DescriptorOutput"/>) when its open file is non-blocking.</summary>
public sealed class NonBlockingStderrRound49Tests
{
    private const int SetFlags = 4; // F_SETFL

    private const int NonBlocking = 0x800; // O_NONBLOCK on Linux

    /// <summary>
    /// stderr's open file set non-blocking (a pipe made so by whoever started actorqueue, a terminal another program set
    /// O_NONBLOCK on, as node does): once the pipe is full, write(2) says EAGAIN instead of waiting for the reader, and
    /// that was taken for a failure, so every later line (each job's stderr, the summary) was dropped silently though
    /// the reader read them all (`actorqueue run` with such a stderr, read 3 s late: 65536 of 2 MB, no summary, exit 0).
    /// Now an EAGAIN waits (poll(2)) until the pipe takes bytes again, as the console's own stream does.
    /// Failed before: "Assert.Equal() Failure: Values differ Expected: 200000 Actual: 65536".
    /// Mutant: EAGAIN retried without poll's wait passes too but spins a core; EAGAIN thrown (the code before) fails.
    /// </summary>
    [Fact]
    public async Task A_write_to_a_full_non_blocking_pipe_waits_for_its_reader()
    {
        Assert.True(OperatingSystem.IsLinux(), "O_NONBLOCK's value here is Linux's");
        var fds = new int[2];
        Assert.Equal(0, Pipe(fds));
        Assert.Equal(0, Fcntl(fds[1], SetFlags, NonBlocking));
        var output = new ActorQueue.Cli.Jobs.DescriptorOutput(fds[1]);
        var write = Task.Run(() =>
        {
            try
            {
                output.Write(new byte[200_000]);
            }
            finally
            {
                Close(fds[1]);
            }
        });

        long read = 0;
        await using (var reader = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[0], ownsHandle: true), FileAccess.Read, 0))
        {
            var buffer = new byte[65536];
            for (int n; (n = await reader.ReadAsync(buffer)) > 0;)
            {
                read += n;
            }
        }

        Assert.Equal(200_000, read);
        await write;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "pipe", SetLastError = true)]
    private static extern int Pipe(int[] fds);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
