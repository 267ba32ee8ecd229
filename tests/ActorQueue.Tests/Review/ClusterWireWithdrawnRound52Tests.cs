using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A producer's announcement names its withdrawn items among the items it announces: a peer's list longer than the
/// items, or naming an item the announcement does not carry, is refused as it is read, like the announcement's other
/// arrays (the router withdrew each id in a loop a peer's bytes sized).
/// </summary>
/// <remarks>
/// Failed before: "Assert.Throws() Failure: No exception was thrown Expected: typeof(System.Runtime.Serialization.SerializationException)"
/// for both refusals. Mutants: the membership check dropped fails the second ("No exception was thrown"); the length
/// check dropped fails the first (its ids are members), the same way.
/// </remarks>
public sealed class ClusterWireWithdrawnRound52Tests : ActorQueueTestKit
{
    [Fact]
    public void An_announcement_with_more_withdrawn_ids_than_items_is_refused()
    {
        var refused = Refused(new ProducerAnnounce(1, 10, [2], ["a"]) { Withdrawn = [2, 2] });
        Assert.Contains("Withdrawn has 2 entries for 1 item", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_announcement_withdrawing_an_item_it_does_not_carry_is_refused()
    {
        var refused = Refused(new ProducerAnnounce(1, 10, [2, 3], ["a", "b"]) { Withdrawn = [4] });
        Assert.Contains("Withdrawn[0] is item 4", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_announcement_withdrawing_some_of_its_items_reads_back()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var announce = Assert.IsType<ProducerAnnounce>(serializer.FromBinary(
            serializer.ToBinary(new ProducerAnnounce(1, 10, [2, 3, 5], ["a", "b", "c"]) { Withdrawn = [5, 2] }), "PA"));

        Assert.Equal([5L, 2L], announce.Withdrawn);
        Assert.Empty(Assert.IsType<ProducerAnnounce>(serializer.FromBinary(serializer.ToBinary(new ProducerAnnounce(1, 10, [], [])), "PA")).Withdrawn);
    }

    private SerializationException Refused(ProducerAnnounce announce)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        return Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(announce), "PA"));
    }
}
