// snippet: cluster
using System.Security.Cryptography.X509Certificates;
using ActorQueue.Cluster;
// end snippet

namespace ActorQueue.Examples;

public static class ScaleOut
{
    public static async Task RunAsync(IReadOnlyList<Uri> uris, Uri uri)
    {
        // snippet: cluster
        // A node: hocon/cluster.conf (remoting on 127.0.0.1, split-brain resolver, failure detector, roles) under yours.
        var system = ActorQueueClusterRuntime.Create(new ClusterNodeOptions
        {
            ListenPort = 4053,                              // 0 = any free port; ListenHost is 127.0.0.1 by default
            SeedNodes = ["127.0.0.1:4053"],                 // or leave empty and call ActorQueueCluster.Get(system).JoinAsync(address)
            Certificate = X509CertificateLoader.LoadPkcs12FromFile("node.pfx", password: null),   // this node's membership
            TrustedAuthorities = [X509CertificateLoader.LoadCertificateFromFile("ca.crt")],      // whose members it accepts
        });
        var node = ActorQueueCluster.Get(system);
        await node.WhenUpAsync();

        // One limit for the whole cluster: every node asking for "llm-calls" shares the same 8 slots.
        ClusterConcurrencyLimiter limiter = node.Limiter("llm-calls", maxRunning: 8, maxQueued: 1000);
        await using (await limiter.AcquireAsync("agent:summarise")) { await CallModelAsync(); }

        // A distributed work queue: workers on every node with the "worker" role pull from one router.
        await using var workers = node.RegisterWorkers<Uri, int>("fetch", async (uri, ct) => await FetchAsync(uri, ct), numWorkers: 4);
        await using var queue = node.WorkQueue<Uri, int>("fetch", maxSize: 200);
        IReadOnlyList<ItemResult<int>> results = await queue.BatchProcessAsync(uris);   // in input order, each with its node
        DistributedItem<int>? item = await queue.SubmitAsync(uri);                       // null = backpressure (not taken)
        // end snippet
        GC.KeepAlive(results);
        GC.KeepAlive(item);
    }

    private static Task CallModelAsync() => Task.CompletedTask;

    private static Task<int> FetchAsync(Uri uri, CancellationToken cancellationToken) => Task.FromResult(200);
}
