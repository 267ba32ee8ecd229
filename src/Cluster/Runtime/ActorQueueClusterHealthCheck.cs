using Akka.Actor;
using Akka.Cluster;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ActorQueue.Cluster;

/// <summary>
/// A cluster node's health for the host's health checks: register it with
/// <c>services.AddHealthChecks().AddTypeActivatedCheck&lt;ActorQueueClusterHealthCheck&gt;("actorqueue-cluster")</c>
/// (the node's <see cref="ActorSystem"/> comes from the container, as Akka.Hosting and ActorQueue.Hosting register it)
/// or <c>AddCheck("actorqueue-cluster", new ActorQueueClusterHealthCheck(system))</c>. It reads the cluster's state as
/// this node last saw it: no message is sent, no thread waits.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><b>The registration's failure status</b> (unhealthy unless set otherwise): the actor system or the node's
/// cluster has terminated, or this node is leaving, exiting, down or removed — it will serve no cluster limiter or
/// queue again.</item>
/// <item><b>Degraded</b>: this node is not Up yet (not joined, joining, or weakly up while a member is unreachable), a member is
/// unreachable from this node (a singleton hand-over or a lost node's leases wait until it is downed or back), or no
/// member that may host the singleton hub (the <c>actorqueue.cluster.singleton-role</c>, any member without one) is Up:
/// cluster limiters and distributed queues have no gatekeeper or router until one is. A readiness probe should treat
/// degraded as not ready (<c>HealthCheckOptions.ResultStatusCodes</c>); a liveness probe should not restart a node
/// that is still joining.</item>
/// <item><b>Healthy</b> otherwise.</item>
/// </list>
/// The data hold <c>self.status</c>, <c>members.up</c> and <c>members.unreachable</c>.
/// </remarks>
/// <param name="system">A cluster node (created with <see cref="ActorQueueClusterRuntime.Create"/> or configured with ActorQueue's cluster HOCON).</param>
public sealed class ActorQueueClusterHealthCheck(ActorSystem system) : IHealthCheck
{
    private readonly ActorSystem _system = system ?? throw new ArgumentNullException(nameof(system));

    /// <summary>Reads this node's view of the cluster; completes at once.</summary>
    /// <param name="context">The registration being checked (its failure status is what a stopped node reports).</param>
    /// <param name="cancellationToken">Not used: nothing waits.</param>
    /// <returns>The result, with the causes in its description and the counts in its data.</returns>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_system.WhenTerminated.IsCompleted)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"The actor system '{_system.Name}' has terminated"));
        }

        var node = ActorQueueCluster.Get(_system);
        var cluster = node.Cluster;
        var state = cluster.State;
        var self = cluster.SelfMember;
        var view = new NodeView(
            self.Status,
            cluster.IsTerminated,
            state.Unreachable.Select(member => member.Address).ToList(),
            state.Members.Count(member => member.Status == MemberStatus.Up),
            state.Members.Any(member => member.Status == MemberStatus.Up && !state.Unreachable.Contains(member)
                                        && (node.Settings.SingletonRole is not { } role || member.HasRole(role))),
            node.Settings.SingletonRole)
        {
            // Before it joins, Akka shows the node as Removed (with no member known); once removed, its cluster shuts down.
            NotJoined = self.Status == MemberStatus.Removed && !cluster.IsTerminated && state.Members.IsEmpty,
        };
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["self.status"] = view.NotJoined ? "NotJoined" : view.Self.ToString(),
            ["members.up"] = view.MembersUp,
            ["members.unreachable"] = view.Unreachable.Count,
        };
        var (stopped, degraded) = Judge(view, cluster.SelfAddress);
        var result = stopped is not null ? new HealthCheckResult(context.Registration.FailureStatus, stopped, data: data)
            : degraded.Count != 0 ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
            : HealthCheckResult.Healthy($"Cluster node {cluster.SelfAddress} is Up among {view.MembersUp} member(s) Up", data);
        return Task.FromResult(result);
    }

    /// <summary>What the node's view means: why it serves nothing any more, if so, else each reason it is degraded.</summary>
    /// <param name="view">The node's view of the cluster.</param>
    /// <param name="self">This node's address, for the descriptions.</param>
    internal static (string? Stopped, List<string> Degraded) Judge(NodeView view, Address self)
    {
        if (view.NotJoined)
        {
            return (null, [$"cluster node {self} has not joined a cluster yet", ..NoSingletonHost(view)]);
        }

        if (view.ClusterTerminated || view.Self is MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.Down or MemberStatus.Removed)
        {
            return ($"Cluster node {self} is {(view.ClusterTerminated ? "shut down" : view.Self.ToString())}: it serves no cluster limiter or queue", []);
        }

        var degraded = new List<string>();
        if (view.Self != MemberStatus.Up)
        {
            degraded.Add($"cluster node {self} is {view.Self}, not Up yet");
        }

        if (view.Unreachable.Count != 0)
        {
            degraded.Add($"unreachable from this node: {string.Join(", ", view.Unreachable)}");
        }

        degraded.AddRange(NoSingletonHost(view));
        return (null, degraded);
    }

    /// <summary>The reason to give when no member may host the singleton hub, if none is Up.</summary>
    private static IEnumerable<string> NoSingletonHost(NodeView view)
    {
        if (!view.SingletonHostUp)
        {
            yield return view.SingletonRole is { } role
                ? $"no reachable member with role '{role}' is Up to host the singleton hub: cluster limiters and queues are not served"
                : "no reachable member is Up to host the singleton hub: cluster limiters and queues are not served";
        }
    }

    /// <summary>One node's view of the cluster at a moment, as the check judges it.</summary>
    /// <param name="Self">This node's status.</param>
    /// <param name="ClusterTerminated">Whether the node's cluster extension has shut down.</param>
    /// <param name="Unreachable">The members this node cannot reach.</param>
    /// <param name="MembersUp">Members Up, reachable or not.</param>
    /// <param name="SingletonHostUp">Whether a reachable member that may host the singleton hub is Up.</param>
    /// <param name="SingletonRole">The role the hub's host needs, if any.</param>
    internal sealed record NodeView(MemberStatus Self, bool ClusterTerminated, IReadOnlyList<Address> Unreachable, int MembersUp, bool SingletonHostUp, string? SingletonRole)
    {
        /// <summary>Whether the node has not joined a cluster yet (Akka shows it as Removed then, knowing no member).</summary>
        public bool NotJoined { get; init; }
    }
}
