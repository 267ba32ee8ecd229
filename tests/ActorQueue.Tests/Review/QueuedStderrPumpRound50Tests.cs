using ActorQueue.Cli.Commands;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 50: the process's one stderr queue (<see cref="QueuedStderr"/>) when its stream fails in a way that is no I/O
/// error (a bug in a stream, a disposed one): the pump caught only I/O errors, so such an exception ended it with the
/// queue's texts unwritten and their writers never told.
/// </summary>
public sealed class QueuedStderrPumpRound50Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The stream throws <see cref="InvalidOperationException"/> on the first text (a line of the process's own); the
    /// run's output written after it (a job's stderr, the summary: its writer waits until the pump wrote it) must come
    /// back, failed as an <see cref="IOException"/> (the run's stderr is best effort: it goes on), and every later text
    /// too, at once; the lines nobody waits for are counted lost; the queue's end neither hangs nor throws, nor does a
    /// text written after it.
    /// Failed before: "the run's output write never returned" (Assert.True() Failure): the exception ended the pump, so
    /// the output's write waited for ever, and with it the run. Mutants: the pump going on handing later texts to the
    /// failed stream (each throws again) fails "Assert.Equal() Failure: Values differ Expected: 1 Actual: 4" (the
    /// stream's calls); the lines the failure lost not counted fails "Expected: 3 Actual: 1".
    /// </summary>
    [Fact]
    public async Task A_stream_that_throws_no_io_error_releases_every_writer_and_counts_the_lost_lines()
    {
        var stream = new ThrowingStream();
        var stderr = new QueuedStderr(stream, CancellationToken.None);
        stderr.WriteLine("own line");
        var output = stderr.Output.WriteAsync("summary\n"u8.ToArray()).AsTask();

        Assert.True(await Poll.CompletesWithin(output, Bound), "the run's output write never returned");
        var failure = await Assert.ThrowsAsync<IOException>(() => output);
        Assert.IsType<InvalidOperationException>(failure.InnerException);

        stderr.Log.WriteLine("a log line after the failure");
        var later = stderr.Output.WriteAsync("later output\n"u8.ToArray()).AsTask();
        Assert.True(await Poll.CompletesWithin(later, Bound), "a later output write never returned");
        await Assert.ThrowsAsync<IOException>(() => later);

        var end = stderr.DisposeAsync().AsTask();
        Assert.True(await Poll.CompletesWithin(end, Bound), "the queue's end never returned");
        await end;
        stderr.WriteLine("late");

        Assert.Equal(1, stream.Calls); // the stream failed once: nothing later was handed to it
        Assert.Equal(3, stderr.Lost); // the own line, the log line and the late line: nobody was told of them
        Assert.Equal(0, stderr.QueuedBytes);
    }

    /// <summary>A stand-in for fd 2 whose every write throws <see cref="InvalidOperationException"/>.</summary>
    private sealed class ThrowingStream : WriteOnlyStandIn
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("the stand-in's stream is broken");
        }
    }
}
