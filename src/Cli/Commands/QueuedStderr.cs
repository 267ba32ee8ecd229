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
/// This process's stderr: every text written to it (the run's or node's own lines, a signal's line, <c>--log</c>'s
/// reports, Serilog's and so Akka's log lines, stray stdout writes, the run's output: jobs' stderr, failures, progress,
/// the summary) is queued, so the thread that writes it never blocks on stderr's reader, and one pump, the only writer
/// of fd 2 in the process, writes the texts in order through <see cref="AbandonableOutput.GivenUpAtStop"/>: a reader
/// that reads, however slowly, gets every line; one that holds the pipe and reads nothing (a stalled log shipper)
/// holds only the pump, and only until half a second after the stop (or the process's end), when the pump's write is
/// given up and the rest dropped, so the process still ends. When each thread wrote its own lines, a full pipe blocked
/// the signal's line in write(2) holding the console's lock, every later line waited for that lock, and so did the
/// exit (a node's "leaving the cluster"; a plain run's <c>--log</c> count at its end): SIGTERM never ended the process.
/// </summary>
/// <remarks>
/// <para>
/// What a reader that has fallen behind costs is bounded, by kind of text: a log line (<see cref="Log"/>: Serilog's,
/// so Akka's, and stray stdout writes) queued while more than <see cref="DefaultMaxQueuedBytes"/> already wait is
/// dropped, counted, and said in one line where the first of them was dropped, once the reader has taken what came
/// before (<see cref="DroppedNote"/>); the run's own output (<see cref="Output"/>) waits for the reader, one write at a
/// time, as it did when it wrote fd 2 itself (the run waits, as any program does, until the stop gives stderr up); the
/// process's own lines (a few per run: the signal's, a node's, the coordinator's, usage and <c>--log</c> reports) are
/// always queued.
/// </para>
/// <para>
/// <see cref="Install"/> makes one the process's <c>Console.Error</c> (Program, for every command); <see cref="DisposeAsync"/>
/// at the process's end waits for the queue to be written, giving up as the stop does. A text written after that end
/// (a ProcessExit handler's) is written at once by its writer, after the pump's last write, given up the same way.
/// </para>
/// </remarks>
internal sealed class QueuedStderr : TextWriter
{
    /// <summary>How many bytes may wait for stderr's reader before a further log line is dropped (said in <c>--help</c> and the README).</summary>
    public const long DefaultMaxQueuedBytes = 1L << 20;

    private readonly Channel<Queued> _texts = Channel.CreateUnbounded<Queued>(new UnboundedChannelOptions { SingleReader = true });

    private readonly AbandonableOutput _stderr;

    /// <summary>The stop, or the process's end (<see cref="DisposeAsync"/>): what gives a write its reader does not take up.</summary>
    private readonly CancellationTokenSource _giveUp;

    private readonly long _maxQueuedBytes;

    private readonly Task _pump;

    /// <summary>Held by a text written after the end (<see cref="WriteLate"/>), so late texts never mix.</summary>
    private readonly Lock _late = new();

    /// <summary>Bytes queued and not yet written (or given up).</summary>
    private long _queuedBytes;

    /// <summary>Log lines dropped and not yet said: the first one queues a <see cref="DroppedNote"/>, which says them all.</summary>
    private long _unsaid;

    private long _dropped;

    private long _lost;

    private static QueuedStderr? s_installed;

    /// <param name="stderr">The stream written to (<see cref="Descriptor2"/>).</param>
    /// <param name="stop">The process's stop: a write its reader does not take is given up half a second after it.</param>
    /// <param name="maxQueuedBytes">How many bytes may wait before a log line is dropped.</param>
    public QueuedStderr(Stream stderr, CancellationToken stop, long maxQueuedBytes = DefaultMaxQueuedBytes)
        : base(CultureInfo.InvariantCulture)
    {
        _maxQueuedBytes = maxQueuedBytes;
        _giveUp = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _stderr = AbandonableOutput.GivenUpAtStop(stderr, _giveUp.Token);
        Log = new LogLines(this);
        _pump = Task.Run(PumpAsync, CancellationToken.None);
    }

    /// <summary>
    /// fd 2, written with write(2) apart from the console's lock (<see cref="DescriptorOutput"/>), so a write blocked on
    /// a full pipe holds no lock that anything else in the process waits for; on Windows, the console's stream.
    /// </summary>
    public static Stream Descriptor2() => OperatingSystem.IsWindows() ? Console.OpenStandardError() : new DescriptorOutput(2);

    /// <summary>The queue installed as this process's stderr (<see cref="Install"/>), if any.</summary>
    public static QueuedStderr? Installed => Volatile.Read(ref s_installed);

    /// <summary>Log lines (Serilog's console, stray stdout writes): dropped and counted past <see cref="DefaultMaxQueuedBytes"/> waiting.</summary>
    public TextWriter Log { get; }

    /// <summary>Log lines dropped so far because too much waited for stderr's reader.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Texts lost with nobody told: written after the end, whose write failed or was given up (nobody is left to say so),
    /// and the lines (no writer waits for them) that the stream's unexpected failure lost (<see cref="Failure"/>).
    /// </summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>
    /// Why the stream failed in a way no write should (an exception that is no I/O error: a bug, a disposed stream),
    /// if it did: the queue then gives stderr up as the stop does, and every text after it fails at once.
    /// </summary>
    public IOException? Failure => Volatile.Read(ref _failure);

    private IOException? _failure;

    /// <summary>Bytes queued and not yet written.</summary>
    internal long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    public override Encoding Encoding => Encoding.UTF8;

    /// <summary>
    /// Makes a queue on fd 2 this process's stderr, for every writer in it: <c>Console.Error</c>, Serilog's console (so
    /// Akka's log), the signals' lines (<see cref="Interrupts.Errors"/>). Dispose it at the process's end.
    /// </summary>
    public static QueuedStderr Install(Interrupts interrupts)
    {
        var stderr = new QueuedStderr(Descriptor2(), interrupts.StopInput) { Interrupts = interrupts };
        Console.SetError(stderr);
        Serilog.Log.Logger = stderr.ConsoleLogger();
        interrupts.Errors = stderr;
        Volatile.Write(ref s_installed, stderr);
        return stderr;
    }

    /// <summary>Serilog's console on this queue: warnings and worse, one line each (<see cref="ConsoleLogFormat"/>), as log lines.</summary>
    public Logger ConsoleLogger() =>
        new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Sink(new QueuedStderrSink(new ConsoleLogFormat(), Log)).CreateLogger();

    /// <summary>The line that says <paramref name="count"/> log lines were dropped where it stands.</summary>
    public static string DroppedNote(long count) =>
        $"actorqueue: {count} log line(s) of stderr dropped here (stderr not read: more than {DefaultMaxQueuedBytes >> 20} MiB waited for its reader)\n";

    public override void Write(char value) => Enqueue(value.ToString(), droppable: false);

    public override void Write(string? value) => Enqueue(value, droppable: false);

    public override void Write(char[] buffer, int index, int count) => Enqueue(new string(buffer, index, count), droppable: false);

    /// <summary>Queues the line with its newline as one text, so another thread's text never comes between them.</summary>
    public override void WriteLine(string? value) => Enqueue(value + NewLine, droppable: false);

    /// <summary>
    /// Stops taking texts into the queue, and gives the writes up as the stop does (a piece its reader takes none of for
    /// half a second); a text written after it is written at once (<see cref="WriteLate"/>). Giving up here, not only in
    /// <see cref="DisposeAsync"/>: a late text waits for the pump, whose write waited for a reader that reads nothing
    /// for ever when the synchronous end came without a stop, and so did the late text's writer.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        _ = _giveUp.CancelAsync(); // its callbacks on the thread pool: the caller's thread goes on; none throws
        _texts.Writer.TryComplete();
        base.Dispose(disposing);
    }

    /// <summary>Stops taking texts and waits until the queued ones are written, or given up as after the stop.</summary>
    public override async ValueTask DisposeAsync()
    {
        Dispose(true);
        await _giveUp.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with this process's stderr queued (<see cref="Installed"/>; without one, a queue of
    /// its own for the body's time, as the process's).
    /// </summary>
    public static async Task<int> RunAsync(Interrupts interrupts, Func<QueuedStderr, Task<int>> body)
    {
        if (Installed is { } installed)
        {
            return await body(installed).ConfigureAwait(false);
        }

        var console = Console.Error;
        var logger = Serilog.Log.Logger;
        await using var stderr = Install(interrupts);
        try
        {
            return await body(stderr).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref s_installed, null);
            interrupts.Errors = null;
            Serilog.Log.Logger = logger;
            Console.SetError(console);
        }
    }

    /// <summary>The interruptions whose stop this queue gives its writes up at, when it was installed for them (<see cref="Install"/>).</summary>
    internal Interrupts? Interrupts { get; private init; }

    /// <summary>
    /// The queue as a stream, for a run's own output to stderr (<see cref="RunConsole"/>): given up at the stop by the
    /// pump already, so it needs no <see cref="AbandonableOutput"/> of its own, which would give up a write that waits
    /// behind lines a slow reader still reads.
    /// </summary>
    public Stream Output => _output ??= new QueuedOutput(this);

    private QueuedOutput? _output;

    private void Enqueue(string? text, bool droppable)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        var queued = Interlocked.Add(ref _queuedBytes, bytes.Length);
        if (droppable && queued > _maxQueuedBytes && queued > bytes.Length)
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            Drop();
            return;
        }

        if (!_texts.Writer.TryWrite(new Queued(bytes, null)))
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            WriteLate(bytes);
        }
    }

    /// <summary>Counts a dropped log line; the first since the last note queues the note, which says them all.</summary>
    private void Drop()
    {
        Interlocked.Increment(ref _dropped);
        if (Interlocked.Increment(ref _unsaid) == 1 && !_texts.Writer.TryWrite(new Queued(null, null)))
        {
            WriteLate(Encoding.UTF8.GetBytes(DroppedNote(Interlocked.Exchange(ref _unsaid, 0))));
        }
    }

    /// <summary>
    /// Writes a text that came after the end (a ProcessExit handler's) at once, on its writer's thread: once the pump has
    /// ended, so it comes after every queued text, and given up as they are (at most half a second a piece its reader
    /// does not take; at once after a write was given up), so it neither holds the exit nor goes unwritten silently.
    /// </summary>
    private void WriteLate(byte[] bytes)
    {
        lock (_late)
        {
            try
            {
                // Blocking is bounded here: the pump and the write are given up at the end (_giveUp is cancelled).
                _pump.Wait();
                if (Failure is null)
                {
                    _stderr.WriteAsync(bytes).AsTask().GetAwaiter().GetResult();
                    return;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
            }
            catch (Exception ex)
            {
                Fail(ex); // as the pump does: a late writer (a ProcessExit handler's) must not die of stderr
            }

            Interlocked.Increment(ref _lost);
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
        Interlocked.Add(ref _queuedBytes, bytes.Length);
        if (_texts.Writer.TryWrite(new Queued(bytes.ToArray(), written)))
        {
            return written.Task;
        }

        Interlocked.Add(ref _queuedBytes, -bytes.Length);
        return Task.FromException(new IOException("stderr is closed: the command has ended"));
    }

    private async Task PumpAsync()
    {
        await foreach (var (bytes, written) in _texts.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                if (Failure is { } failure)
                {
                    Lose(written, failure);
                    continue;
                }

                // No bytes: the note of the log lines dropped since the last one, where the first of them was dropped.
                await _stderr.WriteAsync(bytes ?? Encoding.UTF8.GetBytes(DroppedNote(Interlocked.Exchange(ref _unsaid, 0)))).ConfigureAwait(false);
                written?.TrySetResult();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: its reader is gone (EPIPE), fd 2 is closed, or the stop gave the write up (every later
                // write then fails at once, so the rest of the queue is dropped without waiting). A run's own write
                // hears of it (RunConsole counts stderr best effort too).
                written?.TrySetException(ex);
            }
            catch (Exception ex)
            {
                // Anything else (a bug, a disposed stream) ended the pump, and every writer waiting for it (the run's
                // output: the run) waited for ever: stderr is given up instead, this text and every later one failing at
                // once, as an I/O error, which the run's output takes as best effort.
                Lose(written, Fail(ex));
            }
            finally
            {
                Interlocked.Add(ref _queuedBytes, -(bytes?.Length ?? 0));
            }
        }
    }

    /// <summary>Gives stderr up for good after <paramref name="ex"/>, which no write should throw (<see cref="Failure"/>).</summary>
    private IOException Fail(Exception ex)
    {
        Interlocked.CompareExchange(ref _failure, new IOException($"stderr failed: {ex.GetType().Name}: {ex.Message}", ex), null);
        return Failure!;
    }

    /// <summary>A text not written because of <paramref name="failure"/>: its writer told, or (a line: none waits) counted lost.</summary>
    private void Lose(TaskCompletionSource? written, IOException failure)
    {
        if (written is null)
        {
            Interlocked.Increment(ref _lost);
        }
        else
        {
            written.TrySetException(failure);
        }
    }

    /// <summary>Bytes to write (none: the note of dropped log lines), and what waits for their write (a run's output), or nothing (a line).</summary>
    private readonly record struct Queued(byte[]? Bytes, TaskCompletionSource? Written);

    /// <summary><see cref="Log"/>: each text queued as a log line, which is dropped (counted) past the bound.</summary>
    private sealed class LogLines(QueuedStderr queue) : TextWriter(CultureInfo.InvariantCulture)
    {
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value) => queue.Enqueue(value.ToString(), droppable: true);

        public override void Write(string? value) => queue.Enqueue(value, droppable: true);

        public override void Write(char[] buffer, int index, int count) => queue.Enqueue(new string(buffer, index, count), droppable: true);

        public override void WriteLine(string? value) => queue.Enqueue(value + NewLine, droppable: true);
    }

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

/// <summary>Serilog's console sink: each event formatted whole, then queued on its <see cref="QueuedStderr"/> as a log line.</summary>
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
