using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>Membership is mutual TLS against the cluster's CA: a peer without a certificate of that CA gets nothing.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterAuthenticationTests
{
    [Theory]
    [InlineData(RogueKind.Plaintext)]
    [InlineData(RogueKind.NoCertificate)]
    [InlineData(RogueKind.SelfSigned)]
    [InlineData(RogueKind.OtherAuthority)]
    public async Task A_peer_without_a_certificate_of_the_trusted_CA_cannot_join_take_items_or_put_them(RogueKind kind)
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var member = ActorQueueCluster.Get(cluster.Nodes[0]);
        var seen = new ConcurrentQueue<string>();
        await using var workers = member.RegisterWorkers<JsonElement, JsonElement>("jobs", (job, _) =>
        {
            seen.Enqueue(job.GetProperty("Command").GetString()!);
            return Task.FromResult(job);
        });

        var rejected = new TlsRejections(cluster.Nodes[0]).NextAsync();
        await using var rogue = RoguePeer.Start(kind);
        var taken = rogue.Attack(member.Cluster.SelfAddress.Port!.Value, "jobs", "rogue command");
        await rogue.WaitRefusedAsync(rejected);

        // The member's own item runs on the member, and the rogue's never reaches it.
        await using var queue = member.WorkQueue<JsonElement, JsonElement>("jobs");
        var legit = await queue.SubmitAsync(JsonSerializer.SerializeToElement(new { Command = "legit" }), Timeout.InfiniteTimeSpan);
        var result = await legit!.Completion.WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(member.Cluster.SelfAddress.ToString(), result.Node);
        Assert.Equal(["legit"], seen);
        Assert.Equal(0, taken());
        Assert.False(rogue.Up.IsCompleted);
        Assert.Equal([member.Cluster.SelfAddress], member.Cluster.State.Members.Select(m => m.Address));
    }

    [Fact]
    public async Task Nodes_that_pin_each_others_certificates_form_a_cluster_that_refuses_any_other_certificate()
    {
        var (first, second) = (TestCertificates.SelfSigned("first"), TestCertificates.SelfSigned("second"));
        X509Certificate2[] pins = [X509CertificateLoader.LoadCertificate(first.RawData), X509CertificateLoader.LoadCertificate(second.RawData)];
        await using var cluster = await ClusterNodes.StartAsync(0);
        await cluster.AddNodeAsync(options: new ClusterNodeOptions { Certificate = first, PinnedCertificates = pins });
        await cluster.AddNodeAsync(options: new ClusterNodeOptions { Certificate = second, PinnedCertificates = pins });
        await cluster.WaitForMembersUpAsync(2);

        var rejected = new TlsRejections(cluster.Nodes[1]).NextAsync();
        await using var rogue = RoguePeer.Start(RogueKind.SelfSigned);
        _ = rogue.Attack(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress.Port!.Value, "jobs", "rogue command");
        await rogue.WaitRefusedAsync(rejected);
        Assert.Equal(2, Akka.Cluster.Cluster.Get(cluster.Nodes[0]).State.Members.Count);
    }
}
