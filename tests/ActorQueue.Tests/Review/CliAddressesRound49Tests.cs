using ActorQueue.Cli.Commands;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 49 review of the CLI's loopback rules (<see cref="ClusterSession.ListenRule"/>, <see cref="ClusterSession.SeedRule"/>).
/// </summary>
public sealed class CliAddressesRound49Tests
{
    /// <summary>
    /// A host name other than localhost is refused by the rule whatever it resolves to (the library's rule is by name):
    /// the message said it "is not a loopback address", false of a name such as Debian's own host name, which resolves
    /// to 127.0.1.1, and it sent the user to --allow-remote, which then listens on that loopback address. Failed before:
    /// "--listen myhost:4053: 'myhost' is not a loopback address; listening on the network is an explicit choice: add
    /// --allow-remote" (and "--seed myhost:4053: 'myhost' is not a loopback address, and a node with --insecure-loopback
    /// ..."). Mutant: the IP wording for names too (the name cases fail); the name wording for IP addresses (the IP case fails).
    /// </summary>
    [Theory]
    [InlineData("myhost", false, "--listen myhost:4053: 'myhost' is a host name, and the loopback rule takes only localhost or a loopback IP address, whatever a name resolves to; listening on the network is an explicit choice: add --allow-remote (or give --listen 127.0.0.1:4053)")]
    [InlineData("myhost", true, "--listen myhost:4053: 'myhost' is a host name, and the loopback rule takes only localhost or a loopback IP address, whatever a name resolves to, and --insecure-loopback (no authentication) runs on loopback only")]
    [InlineData("10.1.2.3", false, "--listen 10.1.2.3:4053: '10.1.2.3' is not a loopback address; listening on the network is an explicit choice: add --allow-remote")]
    public void A_listen_host_name_is_said_to_be_a_name_not_a_non_loopback_address(string host, bool insecure, string expected)
    {
        var node = new ClusterNodeOptions { ListenHost = host, ListenPort = 4053, InsecureLoopback = insecure };

        Assert.Equal(expected, ClusterSession.ListenRule(node));
    }

    /// <summary>The same for a seed of a node with --insecure-loopback (see above).</summary>
    [Fact]
    public void A_seed_host_name_is_said_to_be_a_name()
    {
        var node = new ClusterNodeOptions { ListenHost = "127.0.0.1", ListenPort = 4054, InsecureLoopback = true };

        Assert.Equal(
            "--seed myhost:4053: 'myhost' is a host name, and the loopback rule takes only localhost or a loopback IP address, whatever a name resolves to, and a node with --insecure-loopback (no authentication) joins loopback seeds only (give --seed 127.0.0.1:4053)",
            ClusterSession.SeedRule(node, "myhost:4053"));
    }
}
