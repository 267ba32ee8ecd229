using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 184): a settle's <see cref="RemoteSettle.ChargedBy"/>, the epoch of the incarnation that charged the
/// call, is 0 (unknown) or an epoch an incarnation can have (1 to <see cref="Incarnation.HighestEpoch"/>). A peer's
/// other value is refused as the settle is read, like its other fields, with a message naming the field and the value
/// (Akka logs it as the message is dropped).
/// </summary>
public sealed class SettleChargedByRound39Tests : ActorQueueTestKit
{
    /// <summary>Values no agent sends: negative, and the one epoch no incarnation draws.</summary>
    public static TheoryData<long> Impossible => [-1, -42, long.MinValue, long.MaxValue];

    /// <summary>
    /// A settle whose charging epoch no incarnation can have is refused as it is read, naming <c>ChargedBy</c> and the
    /// value. Failed before: each read back as it came (a negative epoch taken as "charged elsewhere": no refund, no word).
    /// </summary>
    [Theory]
    [MemberData(nameof(Impossible))]
    public void A_settle_charged_by_an_impossible_epoch_is_refused_naming_the_field_and_value(long chargedBy)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var settle = new RemoteSettle(1, 2, 1, 10, 30) { Sequence = 7, ChargedBy = chargedBy };

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(settle), "ST"));
        Assert.Contains("ChargedBy", refused.Message, StringComparison.Ordinal);
        Assert.Contains(chargedBy.ToString(System.Globalization.CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
    }

    /// <summary>The values real agents send read back: 0 (unknown), and the lowest and highest epochs.</summary>
    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(Incarnation.HighestEpoch)]
    public void A_settle_charged_by_no_incarnation_or_a_possible_epoch_reads_back(long chargedBy)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var settle = new RemoteSettle(1, 2, 1, 10, 30) { Sequence = 7, ChargedBy = chargedBy };

        Assert.Equal(settle, serializer.FromBinary(serializer.ToBinary(settle), "ST"));
    }
}
