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
        ("LC", new LimitChanged(-1, 0, null)), // gatekeepers count versions from 0 up
        ("RZ", new ResizeLimiter(2, null) { Id = -1 }), // agents number resizes from 1 (0: unnumbered)
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
            new ResizeLimiter(3, null) { Id = long.MaxValue },
            LimitChanged.None, // an agent that heard of no resize announces this: MaxRunning 0
            new LimitChanged(3, 7, 0),
            new LimitChanged(long.MaxValue, 2, null) { Applied = AppliedResizes.None.With(TestActor, 4) }, // a gatekeeper's versions stop at the top
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

    /// <summary>
    /// A limit's applied resizes (the newest resize id per agent): each agent once, each id at least 1, as gatekeepers
    /// build them. A repeated agent is refused, not folded into one entry; an id of 0 or below is refused, not taken as
    /// "nothing applied"; one that reads back is the same agents and ids, also inside an announcement.
    /// </summary>
    [Fact]
    public void A_limits_applied_resizes_name_each_agent_once_with_ids_from_1()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var other = CreateTestProbe().Ref;
        var limit = new LimitChanged(5, 3, 1) { Applied = AppliedResizes.None.With(TestActor, 2).With(other, 7) };
        Assert.Equal(limit, serializer.FromBinary(serializer.ToBinary(limit), "LC"));
        var announce = new LimiterAnnounce(1, Node, [], [], []) { Limit = limit };
        Assert.Equal(limit, Assert.IsType<LimiterAnnounce>(serializer.FromBinary(serializer.ToBinary(announce), "LA")).Limit);

        var path = Akka.Serialization.Serialization.SerializedActorPath(TestActor);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(LimitBytes((path, 0)), "LC"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(LimitBytes((path, -4)), "LC"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(LimitBytes((path, 1), (path, 2)), "LC"));
        Assert.Equal(2, Assert.IsType<LimitChanged>(serializer.FromBinary(LimitBytes((path, 2)), "LC")).Applied.IdOf(TestActor));
    }

    /// <summary>A limit (version 1, 2 running, no queue bound) with these applied entries, as a peer could write it.</summary>
    private static byte[] LimitBytes(params (string Path, long Id)[] applied)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(1L); w.Write(2); w.Write(false); w.Write(applied.Length);
            foreach (var (path, id) in applied)
            {
                w.Write(path); w.Write(id);
            }
        }

        return stream.ToArray();
    }
}
