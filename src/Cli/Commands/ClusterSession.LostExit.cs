using System.Collections.Immutable;
using Akka;
using Akka.Actor;
using Akka.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>The exit of a node whose cluster is lost: no peer is left to acknowledge its leave.</summary>
internal sealed partial class ClusterSession
{
    /// <summary>How often <see cref="DownWhenLostAsync"/> looks at the membership during the cluster-exiting phase.</summary>
    private static readonly TimeSpan LostPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Adds a task to the cluster-exiting phase of <paramref name="system"/>'s coordinated shutdown that downs this node
    /// once its leave cannot complete because no other member is reachable (<see cref="LeaveIsLost"/>). Akka shuts a node
    /// down itself when its TLS handshake with a peer fails (the peer died and something else answers on its port); the
    /// phase then waited its whole 10 s for an exit nobody could acknowledge, so a run that lost its cluster said so 10 s
    /// late, and a node whose coordinator died took as long to exit. Downed, the node stops its cluster on its next leader
    /// tick (1 s) and the phase ends. A leave with a reachable peer is waited for as before: that peer takes over the singleton.
    /// </summary>
    private static void DownWhenLost(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseClusterExiting, "actorqueue-down-when-lost", () =>
        {
            _ = Task.Run(() => DownWhenLostAsync(cluster)); // the phase's own task waits for the exit
            return Task.FromResult(Done.Instance);
        });
    }

    /// <summary>
    /// Watches the membership while this node is leaving (until it is exiting, downed or removed, or its cluster stopped)
    /// and downs it when <see cref="LeaveIsLost"/>.
    /// </summary>
    private static async Task DownWhenLostAsync(Akka.Cluster.Cluster cluster)
    {
        using var poll = new PeriodicTimer(LostPoll);
        do
        {
            if (cluster.IsTerminated || cluster.SelfMember.Status is MemberStatus.Exiting or MemberStatus.Down or MemberStatus.Removed)
            {
                return;
            }

            var state = cluster.State;
            if (LeaveIsLost(cluster.SelfUniqueAddress, state.Members, state.Unreachable))
            {
                cluster.Down(cluster.SelfAddress);
                return;
            }
        }
        while (await poll.WaitForNextTickAsync());
    }

    /// <summary>
    /// Whether a leave of <paramref name="self"/> can never complete as the membership stands: no other member is reachable
    /// to acknowledge it, and an unreachable one blocks the convergence it needs (it is neither downed nor exiting).
    /// </summary>
    internal static bool LeaveIsLost(UniqueAddress self, IEnumerable<Member> members, IImmutableSet<Member> unreachable)
    {
        var others = members.Where(member => !member.UniqueAddress.Equals(self)).ToList();
        return others.All(unreachable.Contains) && others.Any(member => member.Status is not (MemberStatus.Down or MemberStatus.Exiting));
    }
}
