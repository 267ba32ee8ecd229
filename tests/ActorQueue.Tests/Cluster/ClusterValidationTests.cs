using ActorQueue.Cluster;
using ActorQueue.Runtime;
using Akka.Configuration;

namespace ActorQueue.Tests.Cluster;

[Collection(ClusterCollection.Name)]
public sealed class ClusterValidationTests
{
    [Fact]
    public void A_non_loopback_address_is_refused_unless_explicitly_allowed()
    {
        var options = new ClusterNodeOptions { ListenHost = "10.1.2.3" };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal("ListenHost", error.ParamName);
        Assert.Contains("'10.1.2.3' is not a loopback address", error.Message);
        (options with { AllowNonLoopback = true }).Validate();
        new ClusterNodeOptions { ListenHost = "localhost" }.Validate();
        new ClusterNodeOptions { ListenHost = "::1" }.Validate();
    }

    [Theory]
    [InlineData("nohost")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData(":4053")]
    public void A_seed_that_is_not_host_and_port_is_refused_with_its_value(string seed)
    {
        var error = Assert.Throws<ArgumentException>(() => new ClusterNodeOptions { SeedNodes = [seed] }.Validate());
        Assert.Equal("SeedNodes", error.ParamName);
        Assert.Contains($"got '{seed}'", error.Message);
    }

    [Fact]
    public void A_port_out_of_range_is_refused_with_its_value()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClusterNodeOptions { ListenPort = 70000 }.Validate());
        Assert.Equal(("ListenPort", (object?)70000), (error.ParamName, error.ActualValue));
    }

    [Fact]
    public async Task A_system_that_is_not_a_cluster_node_gets_a_clear_error()
    {
        var system = ActorQueueRuntime.Create("plain", ConfigurationFactory.ParseString("akka.loglevel = OFF"));
        try
        {
            var error = Assert.Throws<InvalidOperationException>(() => ActorQueueCluster.Get(system));
            Assert.Contains("is not a cluster node", error.Message);
            Assert.Contains("ActorQueueClusterRuntime.Create", error.Message);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task The_cluster_overlay_binds_to_loopback_and_the_node_api_checks_its_arguments()
    {
        await using var cluster = await ClusterNodes.StartAsync(1, "akka.cluster.roles = [\"frontend\"]");
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        Assert.Equal("127.0.0.1", node.Cluster.SelfAddress.Host);
        Assert.NotEqual(0, node.Cluster.SelfAddress.Port);

        var limiter = node.Limiter("checked", maxRunning: 2);
        Assert.Same(limiter, node.Limiter("checked", maxRunning: 2));
        var mismatch = Assert.Throws<ArgumentException>(() => node.Limiter("checked", maxRunning: 3));
        Assert.Equal("name", mismatch.ParamName);
        Assert.Contains("maxRunning=2", mismatch.Message);
        Assert.Equal("maxRunning", Assert.Throws<ArgumentOutOfRangeException>(() => node.Limiter("other", maxRunning: 0)).ParamName);
        Assert.Equal("maxSize", Assert.Throws<ArgumentOutOfRangeException>(() => node.WorkQueue<int, int>("q", maxSize: 0)).ParamName);

        // This node has only the "frontend" role: it may put items, but not run workers.
        Assert.False(node.IsWorkerNode);
        var notWorker = Assert.Throws<InvalidOperationException>(() => node.RegisterWorkers<int, int>("q", (item, _) => Task.FromResult(item)));
        Assert.Contains("does not have the worker role 'worker'", notWorker.Message);

        await limiter.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await limiter.AcquireAsync());
        var again = node.Limiter("checked", maxRunning: 3); // a disposed name can be used afresh, with new bounds
        Assert.NotSame(limiter, again);
        again.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await again.AcquireAsync());
    }
}
