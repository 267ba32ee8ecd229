using System.Globalization;
using System.Text;
using System.Threading.Channels;
using ActorQueue.Cli.Jobs;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// A node's stderr, or a coordinator's. Every text written (its lines, a signal's line, Serilog's and so Akka's log lines) is queued,
/// so the thread that writes it never blocks, and one pump writes the texts in order through
/// <see cref="AbandonableOutput.GivenUpAtStop"/>: a reader that reads, however slowly, gets every line; one that holds
/// the pipe and reads nothing (a stalled log shipper) holds only the pump, and only until half a second after the stop
/// (or the node's end), when the pump's write is given up and the rest dropped, so the node still ends. When each thread
/// wrote its own lines, a full pipe blocked the signal's line in write(2) holding the console's lock, the node's "leaving
/// the cluster" line waited for that lock, and Akka's logger blocked too: SIGTERM never ended the node.
/// </summary>
/// <remarks>
/// Until the stop, a reader that reads nothing lets the queue grow, as Akka's logger's mailbox grew behind its blocked
/// write before. <see cref="DisposeAsync"/> (the node's end: the coordinator left, or the stop) waits for the queue to be
/// written, giving up as the stop does, so a node whose coordinator left exits though nobody reads its stderr.
/// A coordinator (<c>run --cluster</c>) queues its stderr the same way, its run's own output too (<see cref="Output"/>:
/// the jobs' stderr, their failures, progress, the summary), so one pump owns fd 2 and every line keeps its order.
/// </remarks>
internal sealed class QueuedStderr : TextWriter
{
    private readonly Channel<Queued> _texts = Channel.CreateUnbounded<Queued>(new UnboundedChannelOptions { SingleReader = true });

    private readonly AbandonableOutput _stderr;

    /// <summary>The stop, or the node's end (<see cref="DisposeAsync"/>): what gives a write its reader does not take up.</summary>
    private readonly CancellationTokenSource _giveUp;

    private readonly Task _pump;

    /// <param name="stderr">The stream written to (<see cref="Descriptor2"/>).</param>
    /// <param name="stop">The node's stop: a write its reader does not take is given up half a second after it.</param>
    public QueuedStderr(Stream stderr, CancellationToken stop)
        : base(CultureInfo.InvariantCulture)
    {
        _giveUp = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _stderr = AbandonableOutput.GivenUpAtStop(stderr, _giveUp.Token);
        _pump = Task.Run(PumpAsync, CancellationToken.None);
    }

    /// <summary>
    /// fd 2, written with write(2) apart from the console's lock (<see cref="DescriptorOutput"/>), so a write blocked on
    /// a full pipe holds no lock that anything else in the process (a line written to <c>Console.Error</c>) waits for; on
    /// Windows, the console's stream.
    /// </summary>
    public static Stream Descriptor2() => OperatingSystem.IsWindows() ? Console.OpenStandardError() : new DescriptorOutput(2);

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value) => Enqueue(value.ToString());

    public override void Write(string? value) => Enqueue(value);

    public override void Write(char[] buffer, int index, int count) => Enqueue(new string(buffer, index, count));

    /// <summary>Queues the line with its newline as one text, so another thread's text never comes between them.</summary>
    public override void WriteLine(string? value) => Enqueue(value + NewLine);

    /// <summary>Stops taking texts; what a writer queues after it is dropped (the node has exited).</summary>
    protected override void Dispose(bool disposing)
    {
        _texts.Writer.TryComplete();
        base.Dispose(disposing);
    }

    /// <summary>Stops taking texts and waits until the queued ones are written, or given up as after the stop.</summary>
    public override async ValueTask DisposeAsync()
    {
        Dispose(true);
        await _giveUp.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        _giveUp.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with this process's stderr queued: its own lines (the writer it is given), the
    /// signals' (<see cref="Interrupts.Errors"/>) and Serilog's, so Akka's. Serilog's logger is put back afterwards unless
    /// <paramref name="body"/> replaced it (<c>--log</c>'s, which Program still flushes at the exit).
    /// </summary>
    public static async Task<int> RunAsync(Interrupts interrupts, Func<QueuedStderr, Task<int>> body)
    {
        var console = Log.Logger;
        await using var stderr = new QueuedStderr(Descriptor2(), interrupts.StopInput);
        var queued = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Sink(new QueuedStderrSink(new ConsoleLogFormat(), stderr)).CreateLogger();
        Log.Logger = queued;
        interrupts.Errors = stderr;
        try
        {
            return await body(stderr).ConfigureAwait(false);
        }
        finally
        {
            interrupts.Errors = null;
            if (ReferenceEquals(Log.Logger, queued))
            {
                Log.Logger = console;
            }
        }
    }

    /// <summary>
    /// The queue as a stream, for a run's own output to stderr (<see cref="RunConsole"/>): given up at the stop by the
    /// pump already, so it needs no <see cref="AbandonableOutput"/> of its own, which would give up a write that waits
    /// behind lines a slow reader still reads.
    /// </summary>
    public Stream Output => _output ??= new QueuedOutput(this);

    private QueuedOutput? _output;

    private void Enqueue(string? text)
    {
        if (!string.IsNullOrEmpty(text))
        {
            _texts.Writer.TryWrite(new Queued(Encoding.UTF8.GetBytes(text), null));
        }
    }

    /// <summary>Queues a copy of <paramref name="bytes"/>; the task ends once the pump has written them, or failed to (<see cref="IOException"/>).</summary>
    private Task EnqueueAsync(ReadOnlyMemory<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return Task.CompletedTask;
        }

        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _texts.Writer.TryWrite(new Queued(bytes.ToArray(), written))
            ? written.Task
            : Task.FromException(new IOException("stderr is closed: the command has ended"));
    }

    private async Task PumpAsync()
    {
        await foreach (var (bytes, written) in _texts.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await _stderr.WriteAsync(bytes).ConfigureAwait(false);
                written?.TrySetResult();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: its reader is gone (EPIPE), fd 2 is closed, or the stop gave the write up (every later
                // write then fails at once, so the rest of the queue is dropped without waiting). A run's own write
                // hears of it (RunConsole counts stderr best effort too).
                written?.TrySetException(ex);
            }
        }
    }

    /// <summary>Bytes to write, and what waits for their write (a run's output), or nothing (a line).</summary>
    private readonly record struct Queued(byte[] Bytes, TaskCompletionSource? Written);

    /// <summary><see cref="Output"/>: each write queued after what came before it, and awaited until the pump wrote it.</summary>
    private sealed class QueuedOutput(QueuedStderr queue) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(queue.EnqueueAsync(buffer));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            queue.EnqueueAsync(buffer.AsMemory(offset, count));

        /// <summary>Queued, not waited for: a synchronous write must not block its thread on stderr's reader.</summary>
        public override void Write(byte[] buffer, int offset, int count) => _ = queue.EnqueueAsync(buffer.AsMemory(offset, count)).ContinueWith(
            t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>Serilog's console sink on a node: each event formatted whole, then queued on its <see cref="QueuedStderr"/>.</summary>
/// <param name="format">The console's format (<see cref="ConsoleLogFormat"/>).</param>
/// <param name="stderr">Where the line is queued.</param>
internal sealed class QueuedStderrSink(ITextFormatter format, TextWriter stderr) : ILogEventSink
{
    /// <summary>Formats <paramref name="logEvent"/> and queues it as one text: Emit never waits for stderr's reader.</summary>
    public void Emit(LogEvent logEvent)
    {
        using var line = new StringWriter(CultureInfo.InvariantCulture);
        format.Format(logEvent, line);
        stderr.Write(line.ToString());
    }
}
