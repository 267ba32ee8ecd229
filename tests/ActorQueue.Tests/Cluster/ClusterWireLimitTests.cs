using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A peer's limit, resize and acquire are checked as they are read. A negative bound reached the gatekeeper's
/// <c>ApplyLimit</c>, which stored it as its limit and then threw in <c>PermitPool.Resize</c> / <c>QueueBound.Set</c>
/// (an actor restart that drops every lease and waiter it held); carried in an agent's announcement (<c>Limit</c>) or
/// heard by an agent (<c>LimitChanged</c>) it is announced again to every next incarnation. A negative permit or token
/// count in an acquire is granted and its release takes permits away — the sign the reader already refuses in a block
/// return, grant and announcement. The real senders validate all of these (at least 1 running, at least 0 queued,
/// permits and tokens at least 0), so nothing they send is refused. A resize (or a resized limit) to 0 running is
/// refused too: the gatekeeper applied it and told every agent, whose envelopes then carried 0 running and were all
/// refused (ClusterWireEdgeConsistencyTests).
/// </summary>
public sealed class ClusterWireLimitTests : ActorQueueTestKit
{
    private static readonly Address Node = new("akka.tcp", "sys", "host", 1);

    private static readonly (string Manifest, object Message)[] Refusals =
    [
        ("RZ", new ResizeLimiter(-1, null)),
        ("RZ", new ResizeLimiter(null, -1)),
        ("RZ", new ResizeLimiter(0, null)), // applied, every agent would carry 0 running in envelopes the reader refuses
        ("LC", new LimitChanged(2, 0, null)),
        ("LC", new LimitChanged(2, -1, null)),
        ("LC", new LimitChanged(2, 5, -3)),
        ("LA", new LimiterAnnounce(1, Node, [], [], []) { Limit = new LimitChanged(9, -1, null) }),
        ("AQ", new RemoteAcquire(1, 1, "a") { Permits = -5 }),
        ("AQ", new RemoteAcquire(1, 1, "a") { Tokens = -100 }),
    ];

    public static TheoryData<int> RefusalCases => [.. Enumerable.Range(0, Refusals.Length)];

    [Theory]
    [MemberData(nameof(RefusalCases))]
    public void A_negative_limit_bound_permit_or_token_count_is_refused_as_it_is_read(int index)
    {
        var (manifest, message) = Refusals[index];
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);

        Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(message), manifest));
    }

    [Fact]
    public void Limits_resizes_and_acquires_as_the_real_senders_build_them_read_back()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        object[] messages =
        [
            new ResizeLimiter(null, null),
            new ResizeLimiter(1, 0),
            LimitChanged.None, // an agent that heard of no resize announces this: MaxRunning 0
            new LimitChanged(3, 7, 0),
            new LimiterAnnounce(1, Node, [], [], []), // Limit = LimitChanged.None
            new RemoteAcquire(1, 1, "a") { Permits = 0, Tokens = 0, Priority = -4 },
            new RemoteAcquire(1, 1, "a") { Permits = 3, Tokens = 500, Block = true },
        ];

        foreach (var message in messages)
        {
            var read = serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
            if (message is LimiterAnnounce announce)
            {
                Assert.Equal(announce.Limit, Assert.IsType<LimiterAnnounce>(read).Limit);
            }
            else
            {
                Assert.Equal(message, read);
            }
        }
    }
}
