using System.Runtime.Serialization;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A peer's rate states, settles and new limiters' bounds are checked as they are read. A gatekeeper numbers its rate
/// states from 0 up and never owes below zero, an agent settles counts of at least zero, and an agent asks for a
/// gatekeeper with at least 1 running and a queue bound of at least 0 — a peer's other values were taken as they came:
/// a negative debt made a successor's rates start fuller than empty, a negative settle overflowed the bucket, and a
/// limit below 1 made the hub's new gatekeeper fail to start (the message it carried lost). A state numbered
/// <see cref="long.MaxValue"/> reads: a gatekeeper's numbers stop there (ClusterRateStateTests).
/// </summary>
public sealed class ClusterWireRatesTests : ActorQueueTestKit
{
    private static readonly Address Node = new("akka.tcp", "sys", "host", 1);

    private static readonly (string Manifest, object Message)[] Refusals =
    [
        ("SD", new RemoteSettled(1, 2, new RateState(-1, [0, 0]))),
        ("SD", new RemoteSettled(1, 2, new RateState(4, [0, -810]))),
        ("GR", new RemoteGranted(1, 2, 1, 0) { Rates = new RateState(4, [-1, 0]) }),
        ("LA", new LimiterAnnounce(1, Node, [], [], []) { Rates = new RateState(long.MinValue, [0, 0]), FollowedBefore = true }),
        ("ST", new RemoteSettle(1, 2, -1, 10, 10)),
        ("ST", new RemoteSettle(1, 2, 1, -10, 10)),
        ("ST", new RemoteSettle(1, 2, 1, 10, -10)),
        ("LE", new LimiterEnvelope("l", 0, null, new AgentHello(1))),
        ("LE", new LimiterEnvelope("l", -1, null, new AgentHello(1))),
        ("LE", new LimiterEnvelope("l", 2, -1, new AgentHello(1))),
    ];

    public static TheoryData<int> RefusalCases => [.. Enumerable.Range(0, Refusals.Length)];

    [Theory]
    [MemberData(nameof(RefusalCases))]
    public void A_rate_state_settle_or_new_limit_no_real_sender_makes_is_refused_as_it_is_read(int index)
    {
        var (manifest, message) = Refusals[index];
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);

        Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(message), manifest));
    }

    [Fact]
    public void Rate_states_settles_and_new_limits_as_the_real_senders_build_them_read_back()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var states = new[] { RateState.None, new RateState(1, [0, 0]), new RateState(long.MaxValue, [long.MaxValue, 0]) };
        foreach (var state in states)
        {
            var read = Assert.IsType<RemoteSettled>(serializer.FromBinary(serializer.ToBinary(new RemoteSettled(1, 2, state)), "SD"));
            Assert.Equal(state.Sequence, read.Rates.Sequence);
            Assert.Equal(state.Debts, read.Rates.Debts);
        }

        var settle = new RemoteSettle(1, 2, 0, 0, 0);
        Assert.Equal(settle, serializer.FromBinary(serializer.ToBinary(settle), "ST"));
        foreach (var (maxRunning, maxQueued) in new[] { (1, (int?)null), (4, 0), (int.MaxValue, int.MaxValue) })
        {
            var read = Assert.IsType<LimiterEnvelope>(serializer.FromBinary(serializer.ToBinary(new LimiterEnvelope("l", maxRunning, maxQueued, new AgentHello(1))), "LE"));
            Assert.Equal((maxRunning, maxQueued), (read.MaxRunning, read.MaxQueued));
        }
    }
}
