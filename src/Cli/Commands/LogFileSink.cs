using System.Globalization;
using System.Text;
using System.Threading.Channels;
using ActorQueue.Cli.Jobs;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>--log</c>'s sink: each event formatted and written to the file in order, appended to a regular file, written to
/// anything else that can be opened for writing (a FIFO, <c>/dev/stderr</c> on a pipe or terminal). Serilog's file sink
/// seeks the file it opens, which a pipe cannot do, so it never opened one and every event was lost; its default size
/// limit (1 GB) also drops every later event without a word.
/// </summary>
/// <remarks>
/// <para>
/// A thread that logs only formats the event and queues it; one writer task writes the queue, through an
/// <see cref="AbandonableOutput"/> as the jobs' output is written. (Each event was written under a lock by the thread
/// that logged it: a FIFO whose reader stopped reading held that thread in write(2), every other thread that logged
/// behind it, and so the run, past any Ctrl-C.) At the runner's kill (a second Ctrl-C, SIGQUIT) and at the run's end (<see cref="DisposeAsync"/>)
/// the writer is given up on as stdout is at the kill: each write still due gets <see cref="AbandonableOutput.Grace"/>,
/// so a reader that reads gets every event and one that does not holds the end no longer than that.
/// </para>
/// <para>
/// Nothing is dropped silently: an event whose write fails or is given up, and one logged while more than
/// <see cref="DefaultMaxQueuedBytes"/> already wait for a reader that is that far behind (then it is dropped, so memory
/// stays bounded), is counted; the first such loss is said at once (<see cref="LogSinkFailure.Report"/>: the run goes
/// on), and the count at the end (<see cref="LogSinkFailure.Lost"/>).
/// </para>
/// </remarks>
internal sealed class LogFileSink : ILogEventSink, IAsyncDisposable, IDisposable
{
    /// <summary>How many bytes of events may wait for a reader that has fallen behind; later ones are dropped (counted).</summary>
    public const long DefaultMaxQueuedBytes = 64L << 20;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly string _path;
    private readonly ITextFormatter _formatter;
    private readonly long _maxQueuedBytes;
    private readonly FileStream _file;
    private readonly CancellationTokenSource _giveUp;
    private readonly AbandonableOutput _output;
    private readonly Channel<byte[]> _queue = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writing;
    private long _queuedBytes;
    private long _notWritten;
    private int _disposed;

    /// <summary>Opens <paramref name="path"/> for appending (creating a regular file); throws as <see cref="FileStream"/> does.</summary>
    /// <param name="path">The file, FIFO or device to write.</param>
    /// <param name="formatter">Formats each event.</param>
    /// <param name="kill">The runner's kill: writes still due are given up on after <see cref="AbandonableOutput.Grace"/> each.</param>
    /// <param name="maxQueuedBytes">How many bytes of events may wait for the writer before later ones are dropped.</param>
    public LogFileSink(string path, ITextFormatter formatter, CancellationToken kill, long maxQueuedBytes = DefaultMaxQueuedBytes)
    {
        _path = path;
        _formatter = formatter;
        _maxQueuedBytes = maxQueuedBytes;
        // No buffer of its own: every byte goes out through the abandonable write, none in a flush at dispose.
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        _giveUp = CancellationTokenSource.CreateLinkedTokenSource(kill);
        _output = new AbandonableOutput(_file, _giveUp.Token, "the kill or the run's end");
        _writing = Task.Run(WriteQueuedAsync);
    }

    /// <summary>Events not written so far: dropped at the bound, logged after the end, or whose write failed or was given up.</summary>
    public long NotWritten => Interlocked.Read(ref _notWritten);

    /// <inheritdoc />
    public void Emit(LogEvent logEvent)
    {
        // Serilog calls sinks from any thread; each event is queued whole, so one event's lines are never split by another's.
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        _formatter.Format(logEvent, text);
        var bytes = Utf8.GetBytes(text.ToString());
        var queued = Interlocked.Add(ref _queuedBytes, bytes.Length);
        if (queued > _maxQueuedBytes && queued > bytes.Length)
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            Lose($"its reader is more than {_maxQueuedBytes >> 20} MiB of events behind, so events are dropped until it catches up");
            return;
        }

        if (!_queue.Writer.TryWrite(bytes))
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            Lose("an event came after the run's end");
        }
    }

    /// <summary>
    /// Writes what is still queued while its reader takes it (each write given up after <see cref="AbandonableOutput.Grace"/>),
    /// closes the file and says how many events were not written, if any.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _giveUp.CancelAsync().ConfigureAwait(false);
        await _writing.ConfigureAwait(false);
        await _file.DisposeAsync().ConfigureAwait(false); // unbuffered: nothing to flush, so a stuck reader cannot hold it
        _giveUp.Dispose();
        if (NotWritten > 0)
        {
            LogSinkFailure.Lost(_path, NotWritten);
        }
    }

    /// <inheritdoc cref="DisposeAsync"/>
    /// <remarks>For a caller that cannot await (Serilog's synchronous close); the run itself closes the log with <see cref="DisposeAsync"/>.</remarks>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task WriteQueuedAsync()
    {
        await foreach (var bytes in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await _output.WriteAsync(bytes).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                Lose(ex.Message);
            }
            finally
            {
                Interlocked.Add(ref _queuedBytes, -bytes.Length);
            }
        }
    }

    private void Lose(string why)
    {
        Interlocked.Increment(ref _notWritten);
        LogSinkFailure.Report(_path, why);
    }
}
