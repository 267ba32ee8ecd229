using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Cluster;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using View = ActorQueue.Cluster.ActorQueueClusterHealthCheck.NodeView;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// <see cref="ActorQueueClusterHealthCheck"/>: its rules over a node's view (every status, unreachable members, the
/// singleton's host), and on real nodes registered as the docs say (<c>AddTypeActivatedCheck</c>, the system from the container).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterHealthCheckTests
{
    private static readonly Address Self = new("akka.ssl.tcp", "actorqueue", "127.0.0.1", 4053);
    private static readonly Address Other = new("akka.ssl.tcp", "actorqueue", "127.0.0.1", 4054);

    private static View UpView => new(MemberStatus.Up, ClusterTerminated: false, [], MembersUp: 2, SingletonHostUp: true, SingletonRole: null);

    [Fact]
    public void An_up_node_that_reaches_every_member_with_a_singleton_host_up_is_healthy()
    {
        Assert.Equal((null, 0), Judged(UpView));
    }

    [Theory]
    [InlineData(MemberStatus.Leaving)]
    [InlineData(MemberStatus.Exiting)]
    [InlineData(MemberStatus.Down)]
    [InlineData(MemberStatus.Removed)]
    public void A_node_on_its_way_out_serves_nothing_again(MemberStatus status)
    {
        var (stopped, degraded) = ActorQueueClusterHealthCheck.Judge(UpView with { Self = status }, Self);
        Assert.Equal($"Cluster node {Self} is {status}: it serves no cluster limiter or queue", stopped);
        Assert.Empty(degraded);
    }

    [Fact]
    public void A_node_whose_cluster_shut_down_serves_nothing_again_whatever_status_it_last_saw()
    {
        Assert.Contains("is shut down", ActorQueueClusterHealthCheck.Judge(UpView with { ClusterTerminated = true }, Self).Stopped);
    }

    [Fact]
    public void A_joining_node_an_unreachable_member_and_no_singleton_host_each_degrade_with_their_reason()
    {
        Assert.Equal([$"cluster node {Self} is Joining, not Up yet"], ActorQueueClusterHealthCheck.Judge(UpView with { Self = MemberStatus.Joining }, Self).Degraded);
        Assert.Equal([$"cluster node {Self} is WeaklyUp, not Up yet"], ActorQueueClusterHealthCheck.Judge(UpView with { Self = MemberStatus.WeaklyUp }, Self).Degraded);
        Assert.Equal([$"unreachable from this node: {Other}"], ActorQueueClusterHealthCheck.Judge(UpView with { Unreachable = [Other] }, Self).Degraded);
        var noHost = ActorQueueClusterHealthCheck.Judge(UpView with { SingletonHostUp = false, SingletonRole = "hub" }, Self).Degraded;
        Assert.Equal(["no reachable member with role 'hub' is Up to host the singleton hub: cluster limiters and queues are not served"], noHost);

        var notJoined = ActorQueueClusterHealthCheck.Judge(UpView with { Self = MemberStatus.Removed, NotJoined = true, SingletonHostUp = false }, Self);
        Assert.Equal((null, 2), (notJoined.Stopped, notJoined.Degraded.Count)); // Removed, but before it joined: not on its way out

        var all = ActorQueueClusterHealthCheck.Judge(new View(MemberStatus.Joining, false, [Other], 0, false, null), Self);
        Assert.Equal((null, 3), (all.Stopped, all.Degraded.Count));
    }

    [Fact]
    public async Task A_real_node_is_healthy_once_up_and_reports_the_failure_status_once_it_has_left()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = cluster.Nodes[0];
        await using var services = Checks(node);

        var up = await CheckAsync(services);
        Assert.Equal(HealthStatus.Healthy, up.Status);
        Assert.Equal(("Up", 1, 0), (up.Data["self.status"], up.Data["members.up"], up.Data["members.unreachable"]));

        await ActorQueueCluster.Get(node).LeaveAsync().WaitAsync(ClusterNodes.StepTimeout);
        var left = await CheckAsync(services);
        Assert.Equal(HealthStatus.Unhealthy, left.Status);
    }

    [Fact]
    public async Task A_node_not_joined_yet_is_degraded_naming_its_status()
    {
        var node = ActorQueueClusterRuntime.Create(TestCertificates.MemberOptions("lonely"), ClusterNodes.FastCluster);
        try
        {
            await using var services = Checks(node);
            var entry = await CheckAsync(services);
            Assert.True(entry.Status == HealthStatus.Degraded, $"{entry.Status}: {entry.Description} {entry.Exception}");
            Assert.Contains("has not joined a cluster yet", entry.Description);
            Assert.Equal("NotJoined", entry.Data["self.status"]);
            Assert.Contains("no reachable member is Up to host the singleton hub", entry.Description);
        }
        finally
        {
            await node.Terminate().WaitAsync(ClusterNodes.StepTimeout);
        }
    }

    private static (string? Stopped, int Degraded) Judged(View view)
    {
        var (stopped, degraded) = ActorQueueClusterHealthCheck.Judge(view, Self);
        return (stopped, degraded.Count);
    }

    /// <summary>A container holding <paramref name="node"/> with the check registered as the check's docs say.</summary>
    private static ServiceProvider Checks(ActorSystem node)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(node);
        services.AddHealthChecks().AddTypeActivatedCheck<ActorQueueClusterHealthCheck>("actorqueue-cluster");
        return services.BuildServiceProvider();
    }

    private static async Task<HealthReportEntry> CheckAsync(ServiceProvider services) =>
        (await services.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(ClusterNodes.StepTimeout)).Entries["actorqueue-cluster"];
}
