using System.Net;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Limiting;
using Microsoft.AspNetCore.Http;
using Polly;
using Polly.RateLimiting;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The cluster limiters as .NET's <see cref="RateLimiter"/> and <see cref="PartitionedRateLimiter{TResource}"/>, in the
/// integrations they are made for, on two nodes sharing one limit: ASP.NET Core's middleware on a TestHost per node, an
/// HttpClient handler per node, a Polly pipeline. Each test would pass with a per-node limit only if the nodes never
/// overlapped; the counts are read from the gatekeeper while the overlap is held.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterRateLimiterTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private static Task<T> Within<T>(Task<T> task) => task.WaitAsync(ClusterNodes.StepTimeout);

    private static Task<ClusterLimiterStatus?> StatusUntilAsync(ClusterConcurrencyLimiter limiter, Func<ClusterLimiterStatus, bool> until) =>
        Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), status => status is not null && until(status), ClusterNodes.StepTimeout);

    [Fact]
    public async Task Asp_net_core_middleware_on_two_nodes_shares_one_cluster_limit_and_rejects_with_its_reason()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("web", maxRunning: 1, maxQueued: 1)).ToList();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        var servers = new List<Microsoft.AspNetCore.TestHost.TestServer>();
        foreach (var limiter in limiters)
        {
            var adapter = limiter.AsRateLimiter();
            servers.Add(await RateLimiterApps.StartAppAsync(
                options => options.AddPolicy("actorqueue", _ => RateLimitPartition.Get("all", _ => adapter)), release.Task, () => Interlocked.Increment(ref entered)));
        }

        try
        {
            using var first = servers[0].CreateClient();
            using var second = servers[1].CreateClient();
            var running = first.GetAsync("/work");
            await Poll.UntilAsync(() => Volatile.Read(ref entered) == 1, ClusterNodes.StepTimeout, "the first node's request runs");
            var waiting = second.GetAsync("/work");
            await StatusUntilAsync(limiters[0], status => status is { Running: 1, Waiting: 1 }); // the other node's request waits at the gatekeeper
            using var rejected = await Within(first.GetAsync("/work"));

            Assert.Equal(HttpStatusCode.TooManyRequests, rejected.StatusCode);
            Assert.Equal("Concurrency queue depth (2) exceeds max_queued (1) for web", Assert.Single(rejected.Headers.GetValues("X-Reason")));
            Assert.Equal(1, Volatile.Read(ref entered));
            release.SetResult();
            Assert.Equal(HttpStatusCode.OK, (await Within(running)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Within(waiting)).StatusCode);
            await StatusUntilAsync(limiters[1], status => status.Running == 0);
            var statistics = limiters[0].AsRateLimiter().GetStatistics()!;
            Assert.Equal((1L, 3L), (statistics.TotalSuccessfulLeases, statistics.TotalFailedLeases)); // the middleware's two AttemptAcquires, and the full queue
        }
        finally
        {
            release.TrySetResult();
            servers.ForEach(server => server.Dispose());
        }
    }

    [Fact]
    public async Task Http_client_handlers_on_two_nodes_keep_the_requests_in_flight_under_one_cluster_limit()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("outbound", maxRunning: 2)).ToList();
        var backend = new HeldBackend();
        var clients = limiters.Select(limiter => new HttpClient(new RateLimiterApps.RateLimitedHandler(limiter.AsRateLimiter()) { InnerHandler = backend })).ToList();
        try
        {
            var responses = clients.SelectMany(client => Enumerable.Range(0, 3).Select(_ => client.GetAsync("http://backend.test/"))).ToList();
            await Poll.UntilAsync(() => backend.Entered == 2 && limiters.Sum(limiter => limiter.LocalWaitingCount) == 4, ClusterNodes.StepTimeout,
                () => $"two requests reach the backend ({backend.Entered}) and four wait ({limiters[0].LocalWaitingCount} + {limiters[1].LocalWaitingCount})");
            await StatusUntilAsync(limiters[0], status => status.Running == 2);

            Assert.Equal(2, backend.Entered); // the other four wait at the gatekeeper, from both nodes
            backend.Release();
            Assert.All(await Within(Task.WhenAll(responses)), response => Assert.Equal(HttpStatusCode.OK, response.StatusCode));
            Assert.Equal(6, backend.Entered);
            Assert.Equal(2, backend.MostInFlight);
        }
        finally
        {
            backend.Release();
            clients.ForEach(client => client.Dispose());
        }
    }

    [Fact]
    public async Task Asp_net_core_global_limiter_takes_the_cluster_partitioned_adapter_keyed_by_a_header()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("tenants", maxRunning: 1, maxQueued: 0, Hour)).ToList();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        var servers = new List<Microsoft.AspNetCore.TestHost.TestServer>();
        foreach (var limiter in limiters)
        {
            servers.Add(await RateLimiterApps.StartAppAsync(
                options =>
                {
                    options.GlobalLimiter = limiter.AsPartitionedRateLimiter<HttpContext>(context => context.Request.Headers["X-Tenant"].ToString());
                    options.AddPolicy("actorqueue", _ => RateLimitPartition.GetNoLimiter("none"));
                },
                release.Task, () => Interlocked.Increment(ref entered)));
        }

        try
        {
            using var here = servers[0].CreateClient();
            using var there = servers[1].CreateClient();
            var a = here.SendAsync(Get("a"));
            var b = there.SendAsync(Get("b"));
            await Poll.UntilAsync(() => Volatile.Read(ref entered) == 2, ClusterNodes.StepTimeout, "one request per tenant runs, one on each node");
            using var secondA = await Within(there.SendAsync(Get("a")));

            Assert.Equal(HttpStatusCode.TooManyRequests, secondA.StatusCode);
            Assert.Contains("tenants", Assert.Single(secondA.Headers.GetValues("X-Reason")), StringComparison.Ordinal);
            var adapter = limiters[0].AsPartitionedRateLimiter<string>(key => key);
            Assert.Equal(0, adapter.GetStatistics("a")!.CurrentAvailablePermits); // held, as this node heard with its grant
            Assert.Null(adapter.GetStatistics("b")); // no partition on this node: no counts here
            release.SetResult();
            Assert.Equal(HttpStatusCode.OK, (await Within(a)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Within(b)).StatusCode);
        }
        finally
        {
            release.TrySetResult();
            servers.ForEach(server => server.Dispose());
        }

        static HttpRequestMessage Get(string tenant) => new(HttpMethod.Get, "/work") { Headers = { { "X-Tenant", tenant } } };
    }

    [Fact]
    public async Task A_polly_pipeline_on_another_node_is_refused_by_the_cluster_rate_with_its_retry_after()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var options = new ModelApiLimiterOptions(maxConcurrent: 4, requestsPerPeriod: 1, tokensPerPeriod: 1000, Hour) { MaxQueued = 0 };
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).ModelApiLimiter("llm", options)).ToList();
        var pipelines = limiters.Select(limiter => new ResiliencePipelineBuilder().AddRateLimiter(limiter.AsRateLimiter()).Build()).ToList();

        Assert.Equal(7, await Within(pipelines[0].ExecuteAsync(_ => ValueTask.FromResult(7)).AsTask())); // the period's one request
        var refused = await Assert.ThrowsAsync<RateLimiterRejectedException>(() => Within(pipelines[1].ExecuteAsync(_ => ValueTask.FromResult(0)).AsTask()));

        Assert.NotNull(refused.RetryAfter); // the gatekeeper's rate knows when the next request comes: within the hour
        Assert.InRange(refused.RetryAfter.Value, TimeSpan.FromTicks(1), Hour);
    }

    [Fact]
    public async Task Adapters_check_their_arguments_and_never_grant_a_caller_that_will_not_wait()
    {
        await using var cluster = await ClusterNodes.StartAsync(1, "actorqueue.cluster.limiter-blocks = off"); // counts without a node's block in them
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.Limiter("checks", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();
        var modelApi = node.ModelApiLimiter("checks-rates", new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 10, tokensPerPeriod: 100, Hour));
        var rates = modelApi.AsRateLimiter();
        var partitioned = node.PartitionedModelApiLimiter<string>("checks-keys", new ModelApiLimiterOptions(2, 10, 100, Hour), Hour)
                              .AsPartitionedRateLimiter<string>(text => text == "null" ? null! : text);

        Assert.Same(adapter, limiter.AsRateLimiter());
        Assert.Equal("permitCount", Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AttemptAcquire(3)).ParamName);
        Assert.Equal("permitCount", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => adapter.AcquireAsync(3).AsTask())).ParamName);
        Assert.Equal("permitCount", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => rates.AcquireAsync(101).AsTask())).ParamName);
        Assert.Equal("permitCount", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => partitioned.AcquireAsync("1", 101).AsTask())).ParamName);
        Assert.Equal("key", (await Assert.ThrowsAsync<ArgumentNullException>(() => partitioned.AcquireAsync("null").AsTask())).ParamName);

        using (var refused = adapter.AttemptAcquire(1))
        {
            Assert.False(refused.IsAcquired);
            Assert.True(refused.TryGetMetadata(MetadataName.ReasonPhrase, out var reason));
            Assert.Contains("checks", reason, StringComparison.Ordinal);
        }

        using (var lease = await Within(adapter.AcquireAsync(2).AsTask()))
        {
            Assert.True(lease.IsAcquired);
            Assert.Equal((0, 0), (adapter.GetStatistics()!.CurrentAvailablePermits, adapter.GetStatistics()!.CurrentQueuedCount)); // as this node heard with its grant
            Assert.Null(adapter.IdleDuration);
        }

        Assert.False(adapter.AttemptAcquire(0).IsAcquired); // a probe cannot tell on this node: the counts are as of its last reply
        await Poll.UntilAsync(() => limiter.LocalRunningCount == 0, ClusterNodes.StepTimeout, "the lease went back");
        Assert.NotNull(adapter.IdleDuration);
        Assert.Null(rates.IdleDuration); // a spent bucket still limits: never idle

        using (var call = await Within(rates.AcquireAsync(40).AsTask()))
        {
            Assert.True(call.IsAcquired);
        }

        var status = await Within(modelApi.GetStatusAsync());
        Assert.Equal((9L, 60L), (status.RequestsAvailable, status.TokensAvailable)); // the adapter's permits are tokens
        Assert.Equal((1L, 2L), (adapter.GetStatistics()!.TotalSuccessfulLeases, adapter.GetStatistics()!.TotalFailedLeases));
        limiter.Dispose();
        Assert.Throws<ObjectDisposedException>(() => limiter.AsRateLimiter());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => adapter.AcquireAsync(1).AsTask());
    }

    /// <summary>
    /// A caller waiting in a cluster adapter when its limiter is disposed on this node gets a failed lease saying so, as
    /// from the local adapters and RateLimiting's own limiters (ASP.NET Core's middleware then answers with its rejection
    /// status instead of failing the request); a call made after the disposal throws. Failed before: both waiters threw
    /// ObjectDisposedException.
    /// </summary>
    [Fact]
    public async Task A_waiter_failed_by_the_limiters_disposal_gets_a_failed_lease_from_both_cluster_adapters()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.Limiter("disposed-waiter", maxRunning: 1);
        var adapter = limiter.AsRateLimiter();
        var partitionedLimiter = node.PartitionedLimiter("disposed-waiters", maxRunning: 1, maxQueued: null, Hour);
        var partitioned = partitionedLimiter.AsPartitionedRateLimiter<string>(key => key);
        using var held = await Within(adapter.AcquireAsync(1).AsTask());
        using var heldInPartition = await Within(partitioned.AcquireAsync("a", 1).AsTask());
        Assert.True(held.IsAcquired && heldInPartition.IsAcquired);

        var waiting = adapter.AcquireAsync(1).AsTask();
        var waitingInPartition = partitioned.AcquireAsync("a", 1).AsTask();
        await Poll.UntilAsync(() => limiter.LocalWaitingCount == 1, ClusterNodes.StepTimeout, "the caller waits");
        await limiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await partitionedLimiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);

        foreach (var lease in new[] { await Within(waiting), await Within(waitingInPartition) })
        {
            Assert.False(lease.IsAcquired);
            Assert.True(lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && reason!.Contains("disposed", StringComparison.Ordinal), reason);
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => adapter.AcquireAsync(1).AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => partitioned.AcquireAsync("a", 1).AsTask());
    }

    /// <summary>A backend that holds every request until <see cref="Release"/>, recording how many it held at once.</summary>
    private sealed class HeldBackend : HttpMessageHandler
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _entered;
        private int _inFlight;
        private int _most;

        public int Entered => Volatile.Read(ref _entered);

        public int MostInFlight => Volatile.Read(ref _most);

        public void Release() => _release.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Poll.InterlockedMax(ref _most, Interlocked.Increment(ref _inFlight));
            Interlocked.Increment(ref _entered);
            await _release.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _inFlight);
            return new HttpResponseMessage(HttpStatusCode.OK);
        }
    }
}
