using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A member's announcement of what its node holds and waits for is checked as it is read: the per-request arrays run
/// parallel to the ids (or are empty, for a member that does not send them), and no permit or token count is negative.
/// Otherwise the gatekeeper indexed past a short array while it adopted the announcement (its gate closed for it), or
/// adopted a negative holding, which frees permits nobody released.
/// </summary>
public sealed class ClusterWireAnnounceTests : ActorQueueTestKit
{
    private static readonly Address Node = new("akka.tcp", "sys", "host", 1);

    /// <summary>Each announcement a reader must refuse, with the field its refusal names.</summary>
    private static readonly (string Field, LimiterAnnounce Announce)[] Refusals =
    [
        ("PendingSources", new LimiterAnnounce(1, Node, [], [1, 2], ["a"])),
        ("PendingSources", new LimiterAnnounce(1, Node, [], [1, 2], [])), // unlike the per-request arrays, sources are never empty for ids
        ("HeldPermits", new LimiterAnnounce(1, Node, [7], [], []) { HeldPermits = [-5] }),
        ("HeldPermits", new LimiterAnnounce(1, Node, [7, 8], [], []) { HeldPermits = [1] }),
        ("PendingPermits", new LimiterAnnounce(1, Node, [], [1, 2], ["a", "b"]) { PendingPermits = [1] }),
        ("PendingPermits", new LimiterAnnounce(1, Node, [], [1], ["a"]) { PendingPermits = [-1] }),
        ("PendingPriorities", new LimiterAnnounce(1, Node, [], [1], ["a"]) { PendingPriorities = [1, 2] }),
        ("PendingMayWait", new LimiterAnnounce(1, Node, [], [1, 2], ["a", "b"]) { PendingMayWait = [true] }),
        ("PendingTokens", new LimiterAnnounce(1, Node, [], [1], ["a"]) { PendingTokens = [-100] }),
    ];

    public static TheoryData<int> RefusalCases => [.. Enumerable.Range(0, Refusals.Length)];

    [Theory]
    [MemberData(nameof(RefusalCases))]
    public void An_announcement_whose_arrays_do_not_line_up_or_count_below_zero_is_refused_naming_the_field(int index)
    {
        var (field, announce) = Refusals[index];
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(announce);

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "LA"));
        Assert.Contains(field, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_announcement_with_parallel_or_empty_arrays_reads_back()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var full = new LimiterAnnounce(1, Node, [7, 8], [1, 2], ["a", "b"])
        {
            HeldPermits = [1, 2], PendingPermits = [3, 1], PendingPriorities = [-4, 9], PendingMayWait = [true, false], PendingTokens = [0, 500],
        };
        var lean = new LimiterAnnounce(1, Node, [7], [1], ["a"]); // a member that sends none of the per-request arrays

        foreach (var announce in new[] { full, lean })
        {
            var read = Assert.IsType<LimiterAnnounce>(serializer.FromBinary(serializer.ToBinary(announce), "LA"));
            Assert.Equal(announce.PendingIds, read.PendingIds);
            Assert.Equal(announce.HeldPermits, read.HeldPermits);
            Assert.Equal(announce.PendingPermits, read.PendingPermits);
            Assert.Equal(announce.PendingPriorities, read.PendingPriorities);
            Assert.Equal(announce.PendingMayWait, read.PendingMayWait);
            Assert.Equal(announce.PendingTokens, read.PendingTokens);
        }
    }
}
