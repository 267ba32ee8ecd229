using System.Runtime.InteropServices;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// An open file descriptor (stdout, whatever it is: the jobs' output) written with write(2): on a regular file at the
/// offset it shares with every other writer of that file (stderr, after <c>&gt; out.txt 2&gt;&amp;1</c>), as the
/// console's stream writes it, but without that stream's lock: .NET's console streams hold one lock (Console.Out's)
/// through every write(2), stdout's and stderr's alike, so a stderr write blocked on a reader that reads nothing held
/// the jobs' output to a file as well; on a pipe or terminal that is non-blocking, waiting for its reader on EAGAIN
/// (a file stream took it for a failure: the job failed and the run stopped while its reader read on).
/// A node's stderr (<see cref="Commands.QueuedStderr"/>) is one too, whatever it is: a write of it given up on a full
/// pipe then holds no lock that a line to <c>Console.Error</c> waits for.
/// </summary>
/// <param name="descriptor">The descriptor, left open.</param>
/// <param name="write">write(2) itself unless a test's stand-in (a device's write that takes nothing).</param>
internal sealed class DescriptorOutput(int descriptor, DescriptorOutput.WriteCall? write = null) : Stream
{
    private const int Interrupted = 4; // EINTR

    /// <summary>EAGAIN (EWOULDBLOCK): Linux's 11; 35 on macOS and the BSDs.</summary>
    private static readonly int WouldBlock = OperatingSystem.IsLinux() ? 11 : 35;

    private const short PollOut = 4; // POLLOUT

    /// <summary>write(2)'s shape: the bytes written, or -1 with the error in the last P/Invoke error.</summary>
    internal delegate nint WriteCall(int descriptor, ref byte buffer, nuint count);

    private readonly WriteCall _write = write ?? WriteDescriptor;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <exception cref="IOException">
    /// write(2) failed (a full disk, a closed pipe): its reason; or it took none of a non-empty buffer (a device may: a
    /// regular file, a pipe or a terminal never does), which retried would loop for ever.
    /// </exception>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var written = _write(descriptor, ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length);
            if (written < 0)
            {
                var error = Marshal.GetLastPInvokeError();
                if (error == Interrupted)
                {
                    continue;
                }

                if (error == WouldBlock)
                {
                    // A non-blocking open file (set so by whoever shares it: a terminal node made O_NONBLOCK, a pipe
                    // made so by the parent): wait until it takes bytes again, as a blocking write would, instead of
                    // dropping every later line while its reader reads on.
                    WaitWritable();
                    continue;
                }

                throw new IOException(Marshal.GetPInvokeErrorMessage(error), error);
            }

            if (written == 0)
            {
                throw new IOException($"write(2) to file descriptor {descriptor} took none of {buffer.Length} bytes");
            }

            buffer = buffer[(int)written..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>
    /// Writes on the thread pool, not on the caller's thread: a file's write can hang too (a frozen filesystem, a dead
    /// NFS server), and the runner's kill gives up a stdout write only when it gets the write's task back
    /// (<see cref="AbandonableOutput"/>). <paramref name="buffer"/> must stay unchanged until the task ends.
    /// </summary>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        new(Task.Run(() => Write(buffer.Span), CancellationToken.None));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Waits (poll(2), no timeout: as a blocking write(2) would; <see cref="AbandonableOutput"/> gives a write up) until
    /// the descriptor takes bytes again, or says why it never will (POLLERR, POLLHUP: the next write(2) then fails).
    /// </summary>
    private void WaitWritable()
    {
        var poll = new PollDescriptor { Descriptor = descriptor, Events = PollOut };
        while (Poll(ref poll, 1, -1) < 0 && Marshal.GetLastPInvokeError() == Interrupted)
        {
        }
    }

    // DllImport rather than LibraryImport, as elsewhere here: a pinned ref needs no unsafe code.
    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint WriteDescriptor(int descriptor, ref byte buffer, nuint count);

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern int Poll(ref PollDescriptor descriptors, nuint count, int timeout);

    /// <summary>poll(2)'s struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }
}
