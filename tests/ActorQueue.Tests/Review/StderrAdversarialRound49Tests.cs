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
