using System.Text;
using ActorQueue.Cli.Commands;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 49: the process's one stderr queue (<see cref="QueuedStderr"/>) on a stand-in for fd 2: what it does with a
/// text written after its end, and with log lines while its reader has fallen behind.
/// </summary>
public sealed class QueuedStderrRound49Tests
{
    /// <summary>
    /// A line written after the queue's end (with <c>run --cluster --log</c>, a console line logged once the run had
    /// ended; now, a ProcessExit handler's) is written, after what was queued before it.
    /// Failed before: "Assert.Contains() Failure: Sub-string not found" (the closed queue dropped it silently).
    /// Mutant: the late text dropped and only counted (<see cref="QueuedStderr.Lost"/>) fails it the same way.
    /// </summary>
    [Fact]
    public async Task A_line_written_after_the_end_is_written_after_the_queued_ones()
    {
        var written = new GatedStream(open: true);
        var stderr = new QueuedStderr(written, CancellationToken.None);
        stderr.WriteLine("queued");
        await stderr.DisposeAsync();

        stderr.WriteLine("late");

        Assert.Contains("queued\nlate\n", written.Text, StringComparison.Ordinal);
    }

    /// <summary>
    /// A reader that reads nothing (the stand-in shut) while 30 log lines of 9 bytes are written under a bound of 100
    /// bytes: the first 11 wait (99 bytes), the rest, and a log line after the process's own line, are dropped, counted,
    /// and said in one line where the first was dropped; the process's own line and the run's output (which waits for
    /// the reader) are kept, in order, whatever the bound. Memory stays within the bound and the kept texts.
    /// Failed before (the old queue kept every text, so memory grew with the log lines; it had no log writer, so the
    /// test ran on the mutant that never drops, which is that behaviour): "Assert.Equal() Failure: Values differ
    /// Expected: 116 Actual: 293" (the bytes waiting). Mutants that fail the text's equality: no note (dropped
    /// silently), the process's own lines dropped too, the note at the end instead of where the lines were dropped.
    /// </summary>
    [Fact]
    public async Task Log_lines_past_the_bound_are_dropped_and_said_where_they_were_while_own_lines_and_output_wait()
    {
        var reader = new GatedStream(open: false);
        var stderr = new QueuedStderr(reader, CancellationToken.None, maxQueuedBytes: 100);
        for (var i = 0; i < 30; i++)
        {
            stderr.Log.WriteLine($"log-{i:D4}");
        }

        stderr.WriteLine("own line");
        stderr.Log.WriteLine("after");
        var output = stderr.Output.WriteAsync("summary\n"u8.ToArray()).AsTask();
        Assert.False(output.IsCompleted, "the run's output waits for the reader");
        Assert.Equal(99 + "own line\n".Length + "summary\n".Length, stderr.QueuedBytes);

        reader.Open();
        await output;
        await stderr.DisposeAsync();

        var expected = string.Concat(Enumerable.Range(0, 11).Select(i => $"log-{i:D4}\n")) + QueuedStderr.DroppedNote(20) + "own line\nsummary\n";
        Assert.Equal(expected, reader.Text);
        Assert.Equal(20, stderr.Dropped);
        Assert.Equal(0, stderr.QueuedBytes);
    }
}

/// <summary>A stand-in for fd 2 that keeps what is written; its writes wait while it is shut (a reader that reads nothing).</summary>
internal sealed class GatedStream(bool open) : WriteOnlyStandIn
{
    private readonly MemoryStream _written = new();

    private readonly TaskCompletionSource _open = NewOpen(open);

    public string Text
    {
        get
        {
            lock (_written)
            {
                return Encoding.UTF8.GetString(_written.ToArray());
            }
        }
    }

    /// <summary>Lets the waiting writes and every later one through, as a reader that starts reading.</summary>
    public void Open() => _open.TrySetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _open.Task.ConfigureAwait(false);
        lock (_written)
        {
            _written.Write(buffer.Span);
        }
    }

    private static TaskCompletionSource NewOpen(bool open)
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open)
        {
            source.SetResult();
        }

        return source;
    }
}
