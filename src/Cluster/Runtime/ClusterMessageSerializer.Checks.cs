using Akka.Actor;
using static ActorQueue.Cluster.WireFormat;

namespace ActorQueue.Cluster;

/// <summary>The readers of <see cref="ClusterMessageSerializer"/> that check how a peer's values fit together, beyond one field at a time.</summary>
public sealed partial class ClusterMessageSerializer
{
    /// <summary>
    /// A member's announcement, checked as it is read: every per-request array runs parallel to its ids or is empty
    /// (a member that does not send it), and no permit or token count is negative. The gatekeeper indexed past a short
    /// array while it adopted an announcement with its gate closed, and took a negative holding as permits freed.
    /// </summary>
    private LimiterAnnounce ReadAnnounce(BinaryReader r)
    {
        var announce = new LimiterAnnounce(r.ReadInt64(), Address.Parse(r.ReadString()), ReadLongs(r), ReadLongs(r), ReadStrings(r))
        {
            HeldPermits = ReadInts(r), PendingPermits = ReadInts(r), PendingPriorities = ReadInts(r), Limit = ReadLimit(r),
            PendingMayWait = ReadBools(r), PendingTokens = ReadLongs(r), Rates = ReadRateState(r), FollowedBefore = r.ReadBoolean(),
            BlockPermits = ReadCount(r), PendingUnsent = ReadBools(r),
        };
        var (held, pending) = (announce.Held.Length, announce.PendingIds.Length);
        Parallel(nameof(announce.PendingSources), announce.PendingSources.Length, pending, mayBeEmpty: false);
        Parallel(nameof(announce.HeldPermits), announce.HeldPermits.Length, held);
        Parallel(nameof(announce.PendingPermits), announce.PendingPermits.Length, pending);
        Parallel(nameof(announce.PendingPriorities), announce.PendingPriorities.Length, pending);
        Parallel(nameof(announce.PendingMayWait), announce.PendingMayWait.Length, pending);
        Parallel(nameof(announce.PendingUnsent), announce.PendingUnsent.Length, pending);
        Parallel(nameof(announce.PendingTokens), announce.PendingTokens.Length, pending);
        NotNegative(nameof(announce.HeldPermits), Array.ConvertAll(announce.HeldPermits, permits => (long)permits));
        NotNegative(nameof(announce.PendingPermits), Array.ConvertAll(announce.PendingPermits, permits => (long)permits));
        NotNegative(nameof(announce.PendingTokens), announce.PendingTokens);
        return announce;

        static void Parallel(string field, int length, int ids, bool mayBeEmpty = true)
        {
            if (length != ids && !(mayBeEmpty && length == 0))
            {
                throw new System.Runtime.Serialization.SerializationException($"{field} has {length} entries for {ids} ids");
            }
        }

        static void NotNegative(string field, long[] counts)
        {
            if (Array.FindIndex(counts, count => count < 0) is var at and >= 0)
            {
                throw new System.Runtime.Serialization.SerializationException($"{field}[{at}] is {counts[at]}; a count must be >= 0");
            }
        }
    }

    /// <summary>The longest finite put timeout a producer sends, in ms: its timeout is normalised to 2^32 − 2 ms (Timeouts.LongestFinite) first.</summary>
    private const long LongestPutTimeoutMs = uint.MaxValue - 1;

    /// <summary>
    /// A put's wait for space: −1 (until space) or 0 to <see cref="LongestPutTimeoutMs"/>, as producers send it. A peer's
    /// longer one made the router's TimeSpan.FromMilliseconds throw in the middle of its message (a restart).
    /// </summary>
    private static long ReadPutTimeout(BinaryReader r)
    {
        var timeoutMs = r.ReadInt64();
        return timeoutMs is >= -1 and <= LongestPutTimeoutMs
            ? timeoutMs
            : throw new System.Runtime.Serialization.SerializationException($"a put timeout must be -1 or 0 to {LongestPutTimeoutMs} ms, got {timeoutMs}");
    }

    /// <summary>
    /// A settle's <see cref="RemoteSettle.ChargedBy"/>: 0 (unknown) or an epoch an incarnation can have, 1 to
    /// <see cref="Incarnation.HighestEpoch"/>. A peer's other value (negative, or the one epoch none draws) names no
    /// incarnation; it was taken as "charged elsewhere" without a word.
    /// </summary>
    private static long ChargingEpoch(long epoch) =>
        epoch is >= 0 and <= Incarnation.HighestEpoch
            ? epoch
            : throw new System.Runtime.Serialization.SerializationException($"ChargedBy must be 0 or an epoch, 1 to {Incarnation.HighestEpoch}, got {epoch}");

    /// <summary>Each item's id and payload travel side by side: a router took the first items and threw at the first id without a payload.</summary>
    private static void SideBySide(long[] itemIds, string[] payloads)
    {
        if (payloads.Length != itemIds.Length)
        {
            throw new System.Runtime.Serialization.SerializationException($"Payloads has {payloads.Length} entries for {itemIds.Length} item ids");
        }
    }
}
