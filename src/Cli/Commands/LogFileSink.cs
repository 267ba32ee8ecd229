using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
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
/// A thread that logs only formats the event and queues it; one writer thread of its own (never a thread-pool thread)
/// writes the queue. (Each event was written under a lock by the thread that logged it: a FIFO whose reader stopped
/// reading held that thread in write(2), every other thread that logged behind it, and so the run, past any Ctrl-C.)
/// </para>
/// <para>
/// At the runner's kill (a second Ctrl-C, SIGQUIT) and at the run's end (<see cref="DisposeAsync"/>) the writer is given
/// up on: a write still under way <see cref="AbandonableOutput.Grace"/> after it began (or after the kill or end, if it
/// began earlier) is abandoned, and so is the end itself <see cref="EndBound"/> after it began, so a reader that reads
/// gets every event (a slow one, what it takes in that time) and one that does not holds the end no longer than that.
/// (The grace was counted from when the write was asked for, on the thread pool: a starved pool could lose the last
/// events even to a regular file; and a slow but reading FIFO held the end as long as it read.)
/// </para>
/// <para>
/// Nothing is dropped silently: an event whose write fails or is given up, one logged while more than
/// <see cref="DefaultMaxQueuedBytes"/> already wait for a reader that is that far behind (then it is dropped, so memory
/// stays bounded), and one logged after the end are counted; the first such loss is said at once
/// (<see cref="LogSinkFailure.Report"/>), the count at the end, and an event logged after the end in a line of its own.
/// A write given up unfinished is counted unless it has landed by the time the count is said, which says it may be cut short.
/// </para>
/// </remarks>
internal sealed class LogFileSink : ILogEventSink, IAsyncDisposable, IDisposable
{
    /// <summary>How many bytes of events may wait for a reader that has fallen behind; later ones are dropped (counted).</summary>
    public const long DefaultMaxQueuedBytes = 64L << 20;

    /// <summary>How long the end gives the log's reader, in all, to take what is still queued (said in <c>--help</c> and the README).</summary>
    public static readonly TimeSpan EndBound = TimeSpan.FromSeconds(10);

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly string _path;
    private readonly ITextFormatter _formatter;
    private readonly long _maxQueuedBytes;
    private readonly Stream _output;
    private readonly TimeProvider _clock;
    private readonly Action<string, string, bool> _report;
    private readonly Action<string> _say;
    private readonly BlockingCollection<byte[]> _queue = new(new ConcurrentQueue<byte[]>());
    private readonly TaskCompletionSource _writerEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _watched = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenRegistration _onKill;

    /// <summary><see cref="Idle"/>, <see cref="GivenUp"/>, or the timestamp (on <see cref="_clock"/>) the write under way began.</summary>
    private long _write;
    private long _givingUpSince;
    private long _endBy = long.MaxValue;
    private long _queuedBytes;

    /// <summary>
    /// Events counted as not written (<see cref="Lose"/>), with <see cref="Ended"/> set once the end's count is said:
    /// one word, so each loss is, atomically, in that count or after it (said on its own), never both nor neither.
    /// </summary>
    private long _tally;

    /// <summary>In <see cref="_tally"/>: the end's count has been said (far above any count).</summary>
    private const long Ended = 1L << 62;

    private int _watching;
    private int _disposed;

    /// <summary>What the writer thread's give-up left: 0 none, 1 a write given up unfinished, 2 it has landed since, 3 it has failed since.</summary>
    private int _abandoned;

    /// <summary>0 running, 1 ending (the end's count is still to be said), 2 ended.</summary>
    private int _phase;
    private int _lateSaid;

    /// <summary>Why what is left is not written once the end's time (<see cref="EndBound"/>) is up.</summary>
    private static readonly string EndIsUp = $"its reader did not take the rest within {EndBound.TotalSeconds:0} s of the run's end";

    private const long Idle = 0;
    private const long GivenUp = -1;

    /// <summary>Opens <paramref name="path"/> for appending (creating a regular file); throws as <see cref="FileStream"/> does.</summary>
    /// <param name="path">The file, FIFO or device to write.</param>
    /// <param name="formatter">Formats each event.</param>
    /// <param name="kill">The runner's kill: from then on, writes are given up on (see the remarks).</param>
    /// <param name="maxQueuedBytes">How many bytes of events may wait for the writer before later ones are dropped.</param>
    public LogFileSink(string path, ITextFormatter formatter, CancellationToken kill, long maxQueuedBytes = DefaultMaxQueuedBytes)
        // No buffer of its own: every byte goes out in the writer's own write(2), none in a flush at dispose.
        : this(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0), path, formatter, kill, maxQueuedBytes,
               TimeProvider.System, LogSinkFailure.Report, LogSinkFailure.Say)
    {
    }

    /// <summary>The sink on <paramref name="output"/> (owned: disposed at the end), with its clock and its lines to the user given.</summary>
    /// <param name="output">What the writer thread writes each event to, synchronously.</param>
    /// <param name="path">The log's name, as the lines to the user give it.</param>
    /// <param name="formatter">Formats each event.</param>
    /// <param name="kill">The runner's kill.</param>
    /// <param name="maxQueuedBytes">How many bytes of events may wait for the writer before later ones are dropped.</param>
    /// <param name="clock">Times the writes and the end.</param>
    /// <param name="report">Says the first loss: the path, why, and whether the run goes on (not once it is ending).</param>
    /// <param name="say">Says a line to the user (the count at the end, an event after it).</param>
    internal LogFileSink(Stream output, string path, ITextFormatter formatter, CancellationToken kill, long maxQueuedBytes, TimeProvider clock,
        Action<string, string, bool> report, Action<string> say)
    {
        _output = output;
        _path = path;
        _formatter = formatter;
        _maxQueuedBytes = maxQueuedBytes;
        _clock = clock;
        _report = report;
        _say = say;
        new Thread(WriteQueued) { IsBackground = true, Name = "actorqueue --log writer" }.Start();
        _onKill = kill.Register(StartGivingUp);
    }

    /// <summary>
    /// Events not written so far: dropped at the bound, logged after the end, whose write failed, left queued when the
    /// writer was given up on, or whose write was given up on and has not landed since (<see cref="WriteGivenUpUnfinished"/>).
    /// </summary>
    public long NotWritten => Counted(Interlocked.Read(ref _tally));

    /// <summary>Whether a write was given up on and has not ended since: its event is in part in the log, or may yet land whole.</summary>
    public bool WriteGivenUpUnfinished => Volatile.Read(ref _abandoned) == 1;

    /// <summary>Completes when the writer thread has ended (not when it was given up on in a write that never returns).</summary>
    internal Task WriterEnded => _writerEnded.Task;

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

        bool added;
        try
        {
            added = _queue.TryAdd(bytes);
        }
        catch (InvalidOperationException)
        {
            added = false; // completed: the end has begun, or the writer was given up on
        }

        if (!added)
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            Lose(Volatile.Read(ref _phase) == 0 ? "an earlier event's write was given up at the kill" : "an event came after the run's end");
        }
    }

    /// <summary>
    /// Writes what is still queued while its reader takes it (given up as the remarks say), closes the file and says how
    /// many events were not written, if any.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _onKill.DisposeAsync().ConfigureAwait(false);
        Volatile.Write(ref _phase, 1);
        Interlocked.CompareExchange(ref _endBy, _clock.GetTimestamp() + Ticks(EndBound), long.MaxValue);
        _queue.CompleteAdding();
        StartGivingUp();
        await _watched.Task.ConfigureAwait(false);
        await _output.DisposeAsync().ConfigureAwait(false); // unbuffered: nothing to flush, so a stuck reader cannot hold it
        SayTheCount();
    }

    /// <inheritdoc cref="DisposeAsync"/>
    /// <remarks>For a caller that cannot await (Serilog's synchronous close); the run itself closes the log with <see cref="DisposeAsync"/>.</remarks>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>The writer thread: each queued event written synchronously, its start marked for the give-up.</summary>
    private void WriteQueued()
    {
        foreach (var bytes in _queue.GetConsumingEnumerable())
        {
            var start = Math.Max(1, _clock.GetTimestamp());
            if (start >= Interlocked.Read(ref _endBy) || Interlocked.CompareExchange(ref _write, start, Idle) != Idle)
            {
                // The end's time is up (the watch may have seen it first, between two writes): this one and the rest
                // are counted, none written.
                Interlocked.Add(ref _queuedBytes, -bytes.Length);
                Lose(EndIsUp);
                GiveUp(Idle, EndIsUp);
                break;
            }

            string? failure = null;
            try
            {
                _output.Write(bytes, 0, bytes.Length);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
            {
                failure = ex.Message;
            }

            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            if (Interlocked.CompareExchange(ref _write, Idle, start) != start)
            {
                // Given up on while it wrote (counted unfinished): now it has ended, one way or the other.
                Interlocked.CompareExchange(ref _abandoned, failure is null ? 2 : 3, 1);
                break;
            }

            if (failure is not null)
            {
                Lose(failure);
            }
        }

        _writerEnded.TrySetResult();
    }

    /// <summary>Begins giving the writer up (at the kill or the end, whichever comes first): one watch runs until it has ended or is given up.</summary>
    private void StartGivingUp()
    {
        Interlocked.CompareExchange(ref _givingUpSince, _clock.GetTimestamp(), 0);
        if (Interlocked.Exchange(ref _watching, 1) == 0)
        {
            _ = WatchAsync();
        }
    }

    private async Task WatchAsync()
    {
        try
        {
            while (!_writerEnded.Task.IsCompleted)
            {
                var now = _clock.GetTimestamp();
                var write = Interlocked.Read(ref _write);
                var endBy = Interlocked.Read(ref _endBy);
                if (write == GivenUp)
                {
                    break;
                }

                // A write under way gets its grace from when it began (the kill's or end's time, if that is later); between
                // writes the writer is taking the queue, and only the end's bound gives it up.
                var due = write == Idle ? endBy : Math.Min(endBy, Math.Max(write, Interlocked.Read(ref _givingUpSince)) + Ticks(AbandonableOutput.Grace));
                if (now >= due)
                {
                    var since = Volatile.Read(ref _phase) == 0 ? "the kill" : "the run's end";
                    if (GiveUp(write, now >= endBy ? EndIsUp : $"its reader did not take an event within {AbandonableOutput.Grace.TotalSeconds:0.#} s of {since}, so its write was given up"))
                    {
                        break;
                    }

                    continue; // the writer moved on meanwhile: look again
                }

                using var wake = new CancellationTokenSource();
                var next = Math.Min(due - now, Ticks(AbandonableOutput.Grace)); // a write may begin meanwhile: look again by then
                await Task.WhenAny(_writerEnded.Task, Task.Delay(_clock.GetElapsedTime(0, next), _clock, wake.Token)).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
            }

            if (Interlocked.Read(ref _write) == GivenUp && Volatile.Read(ref _abandoned) == 0)
            {
                // Given up between writes: the writer counts the event it took and ends at once, doing no more I/O.
                await _writerEnded.Task.ConfigureAwait(false);
            }
        }
        finally
        {
            _watched.TrySetResult();
        }
    }

    /// <summary>
    /// Gives the writer up if it is still in the state <paramref name="seen"/> (<see cref="Idle"/>, or a write's start):
    /// no more is written, and what is queued is counted (<paramref name="why"/>). <c>false</c> if it has moved on (or was
    /// given up on already).
    /// </summary>
    private bool GiveUp(long seen, string why)
    {
        // Marked before the give-up, so a write that ends just after it finds the mark to record how it ended.
        Volatile.Write(ref _abandoned, seen == Idle ? 0 : 1);
        if (Interlocked.CompareExchange(ref _write, GivenUp, seen) != seen)
        {
            Volatile.Write(ref _abandoned, 0);
            return false;
        }

        if (seen != Idle)
        {
            Report(why); // the write under way: counted (unless it lands) when the count is said
        }

        _queue.CompleteAdding();
        while (_queue.TryTake(out var bytes))
        {
            Interlocked.Add(ref _queuedBytes, -bytes.Length);
            Lose(why);
        }

        return true;
    }

    /// <summary>Counts an event not written and says why the first time (or, after the end's count was said, that it came too late).</summary>
    private void Lose(string why)
    {
        if ((Interlocked.Increment(ref _tally) & Ended) == 0)
        {
            Report(why); // in the end's count, if there is one
        }
        else if (Interlocked.Exchange(ref _lateSaid, 1) == 0)
        {
            _say($"actorqueue: a log event came after the run's end and was not written to --log '{_path}' (nor will any later one be)");
        }
    }

    /// <summary>The events not written by <paramref name="tally"/> (a value of <see cref="_tally"/>), with a write given up that has not landed.</summary>
    private long Counted(long tally) => (tally & ~Ended) + (Volatile.Read(ref _abandoned) is 1 or 3 ? 1 : 0);

    private void Report(string why) => _report(_path, why, Volatile.Read(ref _phase) == 0);

    /// <summary>Says, once the end is over, how many events were not written and whether a write was given up unfinished.</summary>
    private void SayTheCount()
    {
        var count = Counted(Interlocked.Or(ref _tally, Ended)); // a later loss is said on its own
        var unfinished = WriteGivenUpUnfinished;
        Volatile.Write(ref _phase, 2);

        Debug.Assert(Interlocked.Read(ref _queuedBytes) >= 0, "every queued event is written or counted once");
        if (count > 0)
        {
            var cut = unfinished ? " (the write of one of them was given up unfinished: part of it may be there, or all of it may yet land)" : "";
            _say($"actorqueue: {count} log event(s) were not written to --log '{_path}'{cut}");
        }
    }

    /// <summary><paramref name="span"/> in <see cref="_clock"/>'s timestamp units.</summary>
    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _clock.TimestampFrequency);
}
