using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// What the reader lets in must not lead a real sender to write what the reader then refuses. A gatekeeper that heard
/// the highest rate state the reader lets in (an announcement numbered <c>long.MaxValue - 1</c>) stamps its next state
/// <see cref="long.MaxValue"/> (ClusterRateStateTests shows it does), and every grant and settled reply carrying that state to
/// a remote agent was refused as it was read: the grants lost. A resize to 0 running is read and applied by the
/// gatekeeper, which tells every agent; the agents' envelopes then carry 0 running, and every one of them was refused.
/// </summary>
public sealed class ClusterWireEdgeConsistencyTests : ActorQueueTestKit
{
    private static readonly Address Node = new("akka.tcp", "sys", "host", 1);

    private bool Reads(object message, string manifest)
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        try
        {
            serializer.FromBinary(serializer.ToBinary(message), manifest);
            return true;
        }
        catch (SerializationException)
        {
            return false;
        }
    }

    [Fact]
    public void A_state_a_gatekeeper_stamps_after_an_announced_one_the_reader_let_in_is_read_back()
    {
        var announced = new LimiterAnnounce(1, Node, [], [], []) { Rates = new RateState(long.MaxValue - 1, [0, 0]), FollowedBefore = true };
        var stamped = new RateState(long.MaxValue, [0, 0]); // StampRates after it: the number stops at long.MaxValue

        var announceRead = Reads(announced, "LA");
        var grantRead = Reads(new RemoteGranted(1, 2, 1, 0) { Rates = stamped }, "GR");
        var settledRead = Reads(new RemoteSettled(1, 2, stamped), "SD");

        Assert.True(!announceRead || (grantRead && settledRead),
            $"announce read {announceRead}, the gatekeeper's next grant read {grantRead}, its next settled reply read {settledRead}");
    }

    [Fact]
    public void A_limit_a_resize_the_reader_let_in_sets_is_carried_by_the_agents_envelopes()
    {
        var resizeRead = Reads(new ResizeLimiter(0, null), "RZ");
        var changedRead = Reads(new LimitChanged(2, 0, null), "LC");
        var envelopeRead = Reads(new LimiterEnvelope("l", 0, null, new AgentHello(1)), "LE");

        Assert.True(!(resizeRead && changedRead) || envelopeRead,
            $"resize to 0 read {resizeRead}, the gatekeeper's limit of 0 read {changedRead}, an agent's envelope then read {envelopeRead}");
    }
}
