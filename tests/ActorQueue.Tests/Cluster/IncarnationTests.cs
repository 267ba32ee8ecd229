using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>The bookkeeping of a singleton child's incarnation on its own: no actors, the recover requests recorded.</summary>
public sealed class IncarnationTests
{
    private static readonly Address NodeA = new("akka.tcp", "actorqueue", "10.0.0.1", 4053);
    private static readonly Address NodeB = new("akka.tcp", "actorqueue", "10.0.0.2", 4053);
    private static readonly Address NodeC = new("akka.tcp", "actorqueue", "10.0.0.3", 4053);

    private readonly RecordedRequests _asked = new();

    private Incarnation Gatekeeper() => new(_asked, awaitEveryMember: true);

    [Fact]
    public void Every_incarnation_has_its_own_epoch_and_none_is_zero()
    {
        var epochs = Enumerable.Range(0, 1000).Select(_ => Gatekeeper().Epoch).ToList();

        Assert.DoesNotContain(0L, epochs); // 0 is an agent's epoch before it followed any incarnation
        Assert.Equal(epochs.Count, epochs.Distinct().Count());
    }

    [Fact]
    public void The_roll_call_asks_every_member_once_and_is_over_only_when_the_last_one_answered()
    {
        var incarnation = Gatekeeper();

        Assert.False(incarnation.IsRecovered); // before the membership is known, nobody has answered
        Assert.False(incarnation.Begin([NodeA, NodeB, NodeC]));
        Assert.Equal([NodeA, NodeB, NodeC], _asked.Nodes.Order());
        Assert.All(_asked.Epochs, epoch => Assert.Equal(incarnation.Epoch, epoch));

        Assert.True(incarnation.Answered(NodeA)); // its agent announced itself
        Assert.False(incarnation.IsRecovered);
        Assert.True(incarnation.NoAgent(incarnation.Epoch, NodeB)); // its host has no agent for this name
        Assert.False(incarnation.IsRecovered);
        Assert.True(incarnation.Answered(NodeC)); // it left the cluster, or runs no ActorQueue host
        Assert.True(incarnation.IsRecovered);
        Assert.Equal(3, _asked.Nodes.Count); // nobody was asked twice
    }

    [Fact]
    public void A_node_counts_once_and_a_non_member_not_at_all()
    {
        var incarnation = Gatekeeper();
        incarnation.Begin([NodeA, NodeB]);

        Assert.True(incarnation.Answered(NodeA));
        Assert.False(incarnation.Answered(NodeA)); // the same node again (announce, then its removal)
        Assert.False(incarnation.Answered(NodeC)); // an agent of a node that joined after the roll call began
        Assert.False(incarnation.IsRecovered);
        Assert.True(incarnation.Answered(NodeB));
        Assert.True(incarnation.IsRecovered);
    }

    [Fact]
    public void A_no_agent_answer_to_another_incarnation_counts_for_nothing()
    {
        var incarnation = Gatekeeper();
        incarnation.Begin([NodeA]);

        Assert.False(incarnation.NoAgent(incarnation.Epoch + 1, NodeA));
        Assert.False(incarnation.IsRecovered);
        Assert.True(incarnation.NoAgent(incarnation.Epoch, NodeA));
        Assert.True(incarnation.IsRecovered);
    }

    [Fact]
    public void Asking_again_asks_only_the_members_still_silent()
    {
        var incarnation = Gatekeeper();
        incarnation.Begin([NodeA, NodeB, NodeC]);
        incarnation.Answered(NodeB);
        _asked.Clear();

        incarnation.AskAgain();

        Assert.Equal([NodeA, NodeC], _asked.Nodes.Order());
        Assert.Empty(_asked.Agents);
    }

    [Fact]
    public void A_node_that_answered_before_the_roll_call_began_is_neither_asked_nor_awaited()
    {
        var incarnation = Gatekeeper();
        Assert.False(incarnation.Answered(NodeA)); // an agent announced itself before the membership was known

        Assert.False(incarnation.Begin([NodeA, NodeB]));

        Assert.Equal([NodeB], _asked.Nodes);
        Assert.True(incarnation.Answered(NodeB));
        Assert.True(incarnation.IsRecovered);
    }

    [Fact]
    public void With_nobody_to_hear_from_the_roll_call_is_over_at_once()
    {
        var incarnation = Gatekeeper();
        incarnation.Answered(NodeA);

        Assert.True(incarnation.Begin([NodeA]));
        Assert.True(incarnation.IsRecovered);
        Assert.Empty(_asked.Nodes);
    }

    [Fact]
    public void An_incarnation_that_does_not_await_members_serves_at_once_and_still_asks_each_member_once()
    {
        var incarnation = new Incarnation(_asked, awaitEveryMember: false);

        Assert.True(incarnation.IsRecovered);
        Assert.True(incarnation.Begin([NodeA, NodeB]));
        Assert.Equal([NodeA, NodeB], _asked.Nodes.Order());
        incarnation.AskAgain();
        Assert.Equal(2, _asked.Nodes.Count);
    }

    [Fact]
    public void A_sender_of_a_stale_message_is_asked_once_to_announce_itself_and_admitted_after_it_did()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");

        Assert.False(incarnation.Admit(incarnation.Epoch - 1, agent)); // of the previous incarnation: dropped
        Assert.False(incarnation.Admit(0, agent));
        incarnation.Hello(0, agent);
        Assert.Equal([agent], _asked.Agents); // once, however many messages it sends meanwhile

        Assert.True(incarnation.Announced(incarnation.Epoch, agent));
        Assert.True(incarnation.Admit(incarnation.Epoch, agent));
        Assert.Single(_asked.Agents);
    }

    [Fact]
    public void The_current_epoch_from_an_agent_that_never_announced_itself_is_not_admitted()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");

        Assert.False(incarnation.Admit(incarnation.Epoch, agent));
        Assert.Equal([agent], _asked.Agents);
    }

    [Fact]
    public void An_announced_agent_is_not_asked_again_for_its_old_messages_which_are_dropped()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");
        incarnation.Announced(incarnation.Epoch, agent);

        Assert.False(incarnation.Admit(incarnation.Epoch - 1, agent)); // still in flight when it announced: the announcement covered it
        incarnation.Hello(0, agent); // a hello of its first contact, older than any announcement
        Assert.Empty(_asked.Agents);
        Assert.True(incarnation.Admit(incarnation.Epoch, agent));
    }

    /// <summary>
    /// An announced agent whose hello carries another epoch has left this incarnation (it followed a late request of a
    /// lost one, which it cannot tell from a newer one's): it is asked again, once, and its next announcement is taken.
    /// </summary>
    [Fact]
    public void An_announced_agent_whose_hello_shows_another_epoch_is_asked_again_once_and_its_re_announcement_taken()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");
        incarnation.Hello(0, agent);
        Assert.True(incarnation.Announced(incarnation.Epoch, agent));

        incarnation.Hello(42, agent);
        Assert.False(incarnation.Admit(incarnation.Epoch, agent)); // not announced until it announces again
        incarnation.Hello(42, agent);
        Assert.Equal([agent, agent], _asked.Agents);

        Assert.True(incarnation.Announced(incarnation.Epoch, agent));
        Assert.False(incarnation.Announced(incarnation.Epoch, agent));
        Assert.True(incarnation.Admit(incarnation.Epoch, agent));
    }

    [Fact]
    public void Only_the_first_announcement_to_this_epoch_is_taken()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");

        Assert.False(incarnation.Announced(incarnation.Epoch + 1, agent));
        Assert.True(incarnation.Announced(incarnation.Epoch, agent));
        Assert.False(incarnation.Announced(incarnation.Epoch, agent)); // asked through its node and directly, it answers twice
    }

    [Fact]
    public void A_hello_of_an_agent_that_follows_this_incarnation_asks_nothing()
    {
        var incarnation = Gatekeeper();

        incarnation.Hello(incarnation.Epoch, new FakeRef("agent"));

        Assert.Empty(_asked.Agents);
    }

    [Fact]
    public void A_forgotten_agent_is_admitted_no_more_and_asked_again()
    {
        var incarnation = Gatekeeper();
        var agent = new FakeRef("agent");
        incarnation.Admit(0, agent);
        incarnation.Announced(incarnation.Epoch, agent);

        incarnation.Forget(agent);

        Assert.False(incarnation.Admit(incarnation.Epoch, agent));
        Assert.Equal([agent, agent], _asked.Agents);
    }

    /// <summary>The recover requests an incarnation sent, in order.</summary>
    private sealed class RecordedRequests : IRecoveryRequests
    {
        public List<Address> Nodes { get; } = [];

        public List<IActorRef> Agents { get; } = [];

        public List<long> Epochs { get; } = [];

        public void AskNode(Address node, long epoch)
        {
            Nodes.Add(node);
            Epochs.Add(epoch);
        }

        public void AskAgent(IActorRef agent, long epoch)
        {
            Agents.Add(agent);
            Epochs.Add(epoch);
        }

        public void Clear()
        {
            Nodes.Clear();
            Agents.Clear();
            Epochs.Clear();
        }
    }

    /// <summary>An actor reference that only has an identity: the incarnation never sends to agents itself.</summary>
    private sealed class FakeRef(string name) : ActorRefBase
    {
        public override ActorPath Path { get; } = new RootActorPath(NodeA) / "user" / name;

        protected override void TellInternal(object message, IActorRef sender) =>
            throw new InvalidOperationException($"The incarnation sent {message} to {name} itself");
    }
}
