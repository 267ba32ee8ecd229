using System.Runtime.InteropServices;
using ActorQueue.Cli.Jobs;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// DescriptorOutput's write loop when write(2) takes nothing of a non-empty buffer: a regular file never does that, but
/// a device may, and the loop then retried the same bytes for ever.
/// </summary>
public sealed class DescriptorOutputRound48Tests
{
    /// <summary>Bounds a wait that only a hang would reach; no assertion reads it.</summary>
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A write(2) that returns 0 for 5 bytes: the write fails with an IOException naming the descriptor, after one call.
    /// Failed before: "System.TimeoutException: The operation has timed out." (the loop called write(2) for ever, on a
    /// thread of the pool that spun until the test host exited).
    /// </summary>
    [Fact]
    public async Task A_write_that_takes_nothing_fails_naming_the_descriptor()
    {
        var calls = 0;
        var output = new DescriptorOutput(7, (int _, ref byte _, nuint _) =>
        {
            Interlocked.Increment(ref calls);
            return 0;
        });

        var failure = await Assert.ThrowsAsync<IOException>(() => output.WriteAsync("hello"u8.ToArray()).AsTask().WaitAsync(Hang));

        Assert.Contains("file descriptor 7", failure.Message, StringComparison.Ordinal);
        Assert.Equal(1, Volatile.Read(ref calls));
    }

    /// <summary>
    /// The loop still writes what a short write left (a pipe's or a signal's partial write): 5 bytes taken 2, then 3.
    /// Passed before (a guard for the change above: a 0 is an error, a short write is not).
    /// </summary>
    [Fact]
    public void A_short_write_is_continued()
    {
        var taken = new List<byte>();
        var output = new DescriptorOutput(7, (int _, ref byte buffer, nuint count) =>
        {
            var part = (int)Math.Min(count, 2);
            taken.AddRange(MemoryMarshal.CreateReadOnlySpan(ref buffer, part).ToArray());
            return part;
        });

        output.Write("hello"u8);

        Assert.Equal("hello"u8.ToArray(), taken.ToArray());
    }
}
