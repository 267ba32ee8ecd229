using System.Reflection;
using System.Runtime.InteropServices;
using ActorQueue.Actors;
using ActorQueue.Coordination;

namespace ActorQueue.Tests.Limiting;

/// <summary>What a turn writes on most steps, kept on cache lines of their own: the gatekeeper's staged counts and a gate's lease numbers.</summary>
public class PaddedLinesTests
{
    [Fact]
    public void Staged_counts_are_taken_once_the_newest_stage_winning()
    {
        var staged = new TurnCounts();
        Assert.False(staged.TryTake(out _, out _, out _));

        staged.Stage(running: 1, waiting: 2, queued: 3);
        staged.Stage(running: 4, waiting: 5, queued: 6);
        Assert.True(staged.TryTake(out var running, out var waiting, out var queued));
        Assert.Equal((4, 5, 6L), (running, waiting, queued));
        Assert.False(staged.TryTake(out _, out _, out _));
    }

    [Fact]
    public void A_padded_counter_counts_from_zero()
    {
        var counter = new PaddedCounter();
        Assert.Equal(0, counter.Value);
        Assert.Equal(1, counter.Increment());
        Assert.Equal(2, counter.Increment());
        Assert.Equal(2, counter.Value);
    }

    /// <summary>
    /// Each contended turn stages counts (and grants, numbering leases), and the turn moves between cores: beside the
    /// fields every step reads (the actor's, the gate's), each store made the next turn's reads miss on the other core.
    /// Fails if the padding goes (a field moved to an edge, or a smaller size).
    /// </summary>
    [Theory]
    [InlineData(typeof(TurnCounts), 6)]
    [InlineData(typeof(PaddedCounter), 1)]
    public void What_a_turn_writes_sits_a_cache_line_away_from_anything_else(Type padded, int fieldCount)
    {
        const int line = LimiterCounts.CacheLine;
        var fields = padded.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
        var size = padded.StructLayoutAttribute!.Size;

        Assert.Equal(LayoutKind.Explicit, padded.StructLayoutAttribute!.Value);
        Assert.Equal(fieldCount, fields.Length);
        foreach (var field in fields)
        {
            var offset = field.GetCustomAttribute<FieldOffsetAttribute>()!.Value;
            var end = offset + Marshal.SizeOf(field.FieldType == typeof(bool) ? typeof(byte) : field.FieldType);
            Assert.True(offset >= line, $"{field.Name} at {offset}: within a cache line of what sits before the object's fields");
            Assert.True(size - end >= line, $"{field.Name} ends at {end} of {size}: within a cache line of what sits after it");
        }
    }
}
