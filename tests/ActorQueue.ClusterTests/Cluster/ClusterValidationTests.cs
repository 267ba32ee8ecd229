using System.Security.Cryptography.X509Certificates;
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
        var options = TestCertificates.MemberOptions() with { ListenHost = "10.1.2.3" };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal("ListenHost", error.ParamName);
        Assert.Contains("'10.1.2.3' is not a loopback address", error.Message);
        (options with { AllowNonLoopback = true }).Validate();
        new ClusterNodeOptions { ListenHost = "localhost", InsecureLoopback = true }.Validate();
        new ClusterNodeOptions { ListenHost = "::1", InsecureLoopback = true }.Validate();
    }

    [Fact]
    public void A_node_without_a_certificate_is_refused_unless_it_is_an_insecure_loopback_node()
    {
        var error = Assert.Throws<ArgumentException>(new ClusterNodeOptions().Validate);
        Assert.Equal("Certificate", error.ParamName);
        Assert.Contains("Certificate is required", error.Message);
        new ClusterNodeOptions { InsecureLoopback = true, SeedNodes = ["127.0.0.1:4053", "localhost:4054"] }.Validate();

        var network = Assert.Throws<ArgumentException>(new ClusterNodeOptions { InsecureLoopback = true, ListenHost = "0.0.0.0", AllowNonLoopback = true }.Validate);
        Assert.Equal("ListenHost", network.ParamName);
        Assert.Contains("InsecureLoopback (no authentication) is allowed on loopback only", network.Message);
        var seed = Assert.Throws<ArgumentException>(new ClusterNodeOptions { InsecureLoopback = true, SeedNodes = ["10.1.2.3:4053"] }.Validate);
        Assert.Equal(("SeedNodes", true), (seed.ParamName, seed.Message.Contains("got '10.1.2.3:4053'", StringComparison.Ordinal)));
        var both = Assert.Throws<ArgumentException>((TestCertificates.MemberOptions() with { InsecureLoopback = true }).Validate);
        Assert.Equal("InsecureLoopback", both.ParamName);
    }

    [Fact]
    public void A_certificate_without_its_key_or_trust_or_that_its_own_trust_refuses_is_refused_by_name()
    {
        var member = TestCertificates.MemberOptions();
        var cases = new (ClusterNodeOptions Options, string Parameter, string Problem)[]
        {
            (member with { Certificate = X509CertificateLoader.LoadCertificate(member.Certificate!.RawData) }, "Certificate", "has no private key"),
            (member with { TrustedAuthorities = [] }, "TrustedAuthorities", "TrustedAuthorities or PinnedCertificates must name who may join"),
            (member with { TrustedAuthorities = [X509CertificateLoader.LoadCertificate(member.Certificate!.RawData)] }, "TrustedAuthorities", "must be CA certificates, got 'CN=node'"),
            (member with { Certificate = TestCertificates.SelfSigned() }, "Certificate", "not accepted by this node's own TrustedAuthorities"),
            (member with { Certificate = TestCertificates.Node("elsewhere", ClusterCertificates.CreateAuthority("other CA", TimeSpan.FromDays(1))) }, "Certificate", "issued by 'CN=other CA'"),
        };
        foreach (var (options, parameter, problem) in cases)
        {
            var error = Assert.Throws<ArgumentException>(options.Validate);
            Assert.Equal(parameter, error.ParamName);
            Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        }

        // A self-signed certificate is a member when pinned.
        var pinned = TestCertificates.SelfSigned("pinned");
        new ClusterNodeOptions { Certificate = pinned, PinnedCertificates = [X509CertificateLoader.LoadCertificate(pinned.RawData)] }.Validate();
    }

    [Fact]
    public async Task Overrides_can_neither_turn_the_transport_security_off_nor_bind_elsewhere_than_the_options_allow()
    {
        var plaintext = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = off\nakka.loglevel = OFF\nakka.stdout-loglevel = OFF").WithFallback(ClusterNodes.FastCluster);
        var node = ActorQueueClusterRuntime.Create(TestCertificates.MemberOptions(), plaintext);
        try
        {
            Assert.Equal("akka.ssl.tcp", Akka.Cluster.Cluster.Get(node).SelfAddress.Protocol);
        }
        finally
        {
            await node.Terminate();
        }

        var elsewhere = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.hostname = \"0.0.0.0\"");
        var error = Assert.Throws<ArgumentException>(() => ActorQueueClusterRuntime.Create(new ClusterNodeOptions { InsecureLoopback = true }, elsewhere));
        Assert.Equal("akka.remote.dot-netty.tcp.hostname", error.ParamName);
        Assert.Contains("'0.0.0.0' is not a loopback address", error.Message);
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
