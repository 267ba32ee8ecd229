using System.Collections.Immutable;
using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;

namespace ActorQueue.Cli.Commands;

/// <summary>The exit of a node whose leave will not complete: no peer is left to acknowledge it, or it was waited for long enough.</summary>
internal sealed partial class ClusterSession
{
    /// <summary>How often <see cref="DownWhenExitStallsAsync"/> looks at the membership during the cluster-exiting phase.</summary>
    private static readonly TimeSpan LostPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Akka's timeout of the cluster-exiting phase, over <see cref="LeaveBound"/>: a backstop behind
    /// <see cref="DownWhenExitStallsAsync"/>, which downs the node once the leave has been waited for that bound. With
    /// Akka's 10 s the phase timed out (warning "Coordinated shutdown phase [cluster-exiting] timed out") at the very
    /// moment the phase's own bound was due, before the down could end it.
    /// A property: a static field's initializer here could run before <see cref="LeaveBound"/>'s (partial class parts).
    /// </summary>
    private static Config ExitingPhase => ConfigurationFactory.ParseString(
        $"akka.coordinated-shutdown.phases.cluster-exiting.timeout = {(int)(LeaveBound + TimeSpan.FromSeconds(5)).TotalSeconds}s");

    /// <summary>Set when <see cref="DisposeAsync"/> gave up waiting for this node's leave (<see cref="LeaveBound"/>).</summary>
    private volatile bool _leaveGivenUp;

    /// <summary>Set when <see cref="DownWhenExitStallsAsync"/> downed this node (its leave would not complete), just before the down.</summary>
    private volatile bool _downedItself;

    /// <summary>Whether this session downed its own node because its leave would not complete (tests read it: the node is Down only for a moment).</summary>
    internal bool DownedItself => _downedItself;

    /// <summary>
    /// Adds a task to the cluster-exiting phase of <paramref name="system"/>'s coordinated shutdown that downs this node
    /// when its leave will not complete: no other member is reachable to acknowledge it (<see cref="LeaveIsLost"/>), or it
    /// has been waited for <see cref="LeaveBound"/> (by <see cref="DisposeAsync"/>, or by this phase). Akka shuts a node
    /// down itself when its TLS handshake with a peer fails (the peer died and something else answers on its port; Akka
    /// 1.5.74's DotNetty <c>TcpTransport</c> runs the coordinated shutdown with a <c>TlsHandshakeFailureReason</c> on a failed
    /// outbound handshake). The phase then waited its whole 10 s for an exit nobody could acknowledge: a run that lost its
    /// cluster said so 10 s late, and a node whose coordinator died took as long to exit. And beside a live coordinator,
    /// with a killed peer blocking the membership's convergence, a node stopped by SIGTERM waited for its leave the
    /// session's 10 s and then Akka's, until the phase timed out. Downed, the node stops its cluster on its next leader
    /// tick (1 s) and the phase ends. A leave with a reachable peer is waited for up to the bound: that peer takes over
    /// the singleton.
    /// </summary>
    private void DownWhenExitStalls(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseClusterExiting, "actorqueue-down-when-exit-stalls", () =>
        {
            var giveUpAt = Clock.GetUtcNow() + LeaveBound;
            _ = Task.Run(() => DownWhenExitStallsAsync(cluster, giveUpAt)); // the phase's own task waits for the exit
            return Task.FromResult(Done.Instance);
        });
    }

    /// <summary>
    /// Watches the membership while this node is leaving (until it is exiting, downed or removed, or its cluster stopped)
    /// and downs it when <see cref="LeaveIsLost"/>, when the session gave its leave up, or at <paramref name="giveUpAt"/>.
    /// </summary>
    private async Task DownWhenExitStallsAsync(Akka.Cluster.Cluster cluster, DateTimeOffset giveUpAt)
    {
        using var poll = new PeriodicTimer(LostPoll);
        do
        {
            if (cluster.IsTerminated || cluster.SelfMember.Status is MemberStatus.Exiting or MemberStatus.Down or MemberStatus.Removed)
            {
                return;
            }

            var state = cluster.State;
            if (_leaveGivenUp || Clock.GetUtcNow() >= giveUpAt || LeaveIsLost(cluster.SelfUniqueAddress, state.Members, state.Unreachable))
            {
                _downedItself = true;
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
