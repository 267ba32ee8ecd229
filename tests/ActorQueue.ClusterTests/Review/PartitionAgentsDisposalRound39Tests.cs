using System.Reflection;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 184): a partitioned cluster limiter's parent (<see cref="PartitionAgentsActor"/>) whose handler
/// throws while it is disposing. Its disposal waits for every agent to stop behind what was routed to it; a restart of
/// the parent lost that: its PostStop completed the dispose at once, its agents were stopped by a system message ahead of
/// their mailboxes (a resize that had returned was lost), and the next instance, not disposing, lived on.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAgentsDisposalRound39Tests : OneNodeClusterTest
{
    /// <summary>
    /// The partition's agent is held (its cell suspended) with a returned resize in its mailbox; the facade is disposed, so
    /// the parent is disposing and waits for the agent. A handler of the parent then throws: a message its own code never
    /// sends, an agent's stop without a key (made by reflection: a stand-in for any failure of the parent while it
    /// disposes). Expected: the disposal survives it — the dispose completes only once the agent, let go, took the resize
    /// and its stop; the parent then stops; the resize reaches the gatekeeper. Failed before: the dispose had completed
    /// at the failure (the restart's PostStop), with the agent stopped ahead of its mailbox.
    /// </summary>
    [Fact]
    public async Task A_parent_failing_while_disposing_still_waits_for_its_agents_and_stops()
    {
        const string name = "h184-parent-fails-disposing";
        var cluster = ActorQueueCluster.Get(Node);
        var limiter = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        await limiter.GetStatusAsync("warm", ClusterNodes.StepTimeout); // the partition's agent is live
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var parentStopped = parent.WatchAsync();

        var held = await AgentPause.BetweenMessagesAsync(agent);
        limiter.Resize("warm", maxRunning: 5); // routed to the held agent
        var disposed = limiter.DisposeAsync().AsTask();
        await parent.Ask<ActorIdentity>(new Identify(1), ClusterNodes.StepTimeout); // the parent took the dispose: it waits for the agent
        Assert.False(disposed.IsCompleted);

        parent.Tell(AgentStoppedWithoutKey(agent));
        await parent.Ask<ActorIdentity>(new Identify(2), ClusterNodes.StepTimeout); // behind the failure
        Assert.False(disposed.IsCompleted); // failed: the restart had completed it
        held.Dispose(); // the agent goes on

        await disposed.WaitAsync(ClusterNodes.StepTimeout);
        Assert.True(await parentStopped.WaitAsync(ClusterNodes.StepTimeout));
        await using var again = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        await Poll.ValueAsync(() => again.GetStatusAsync("warm", ClusterNodes.StepTimeout), status => status.MaxRunning == 5, ClusterNodes.StepTimeout);
    }

    /// <summary>The parent's private "an agent stopped" message, for <paramref name="agent"/>, with a null key (its dictionary throws on it).</summary>
    private static object AgentStoppedWithoutKey(IActorRef agent)
    {
        var type = typeof(PartitionAgentsActor).GetNestedType("AgentStopped", BindingFlags.NonPublic)!;
        return Activator.CreateInstance(type, [null, agent])!;
    }
}
