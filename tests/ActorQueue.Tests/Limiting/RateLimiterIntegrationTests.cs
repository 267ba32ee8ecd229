using System.Net;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Polly;
using Polly.RateLimiting;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Limiting;

/// <summary>The adapters in the integrations they are made for: ASP.NET Core's middleware on a TestHost, a Polly v8 pipeline, an HttpClient handler.</summary>
public class RateLimiterIntegrationTests : ActorQueueTestKit
{
    [Fact]
    public async Task Asp_net_core_middleware_queues_in_the_gatekeeper_and_rejects_with_its_reason()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 1, name: "web", system: Sys);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        using var server = await RateLimiterApps.StartAppAsync(
            options => options.AddPolicy("actorqueue", _ => RateLimitPartition.Get("all", _ => limiter.AsRateLimiter())),
            release.Task, () => Interlocked.Increment(ref entered));
        using var client = server.CreateClient();

        var first = client.GetAsync("/work");
        await Eventually(() => Volatile.Read(ref entered) == 1, "the first request runs");
        var second = client.GetAsync("/work");
        await Eventually(() => limiter.WaitingCount == 1, "the second request waits in the gatekeeper");
        using var third = await Within(client.GetAsync("/work"));

        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("Concurrency queue depth (2) exceeds max_queued (1) for web", Assert.Single(third.Headers.GetValues("X-Reason")));
        Assert.Equal(1, Volatile.Read(ref entered));
        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await Within(first)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Within(second)).StatusCode);
        await Eventually(() => limiter.RunningCount == 0, "both requests gave their permits back");
    }

    [Fact]
    public async Task Asp_net_core_global_limiter_takes_the_partitioned_adapter_keyed_by_a_header()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { MaxQueued = 0 }, TimeSpan.FromMinutes(1), "tenants", system: Sys);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        using var server = await RateLimiterApps.StartAppAsync(
            options =>
            {
                options.GlobalLimiter = limiter.AsPartitionedRateLimiter<HttpContext>(context => context.Request.Headers["X-Tenant"].ToString());
                options.AddPolicy("actorqueue", _ => RateLimitPartition.GetNoLimiter("none"));
            },
            release.Task, () => Interlocked.Increment(ref entered));
        using var client = server.CreateClient();

        var a = client.SendAsync(Get("a"));
        var b = client.SendAsync(Get("b"));
        await Eventually(() => Volatile.Read(ref entered) == 2, "one request per tenant runs");
        using var secondA = await Within(client.SendAsync(Get("a")));

        Assert.Equal(HttpStatusCode.TooManyRequests, secondA.StatusCode);
        Assert.Contains("tenants", Assert.Single(secondA.Headers.GetValues("X-Reason")), StringComparison.Ordinal);
        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await Within(a)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Within(b)).StatusCode);

        static HttpRequestMessage Get(string tenant) => new(HttpMethod.Get, "/work") { Headers = { { "X-Tenant", tenant } } };
    }

    [Fact]
    public async Task A_polly_pipeline_runs_under_the_limiter_and_rejects_when_the_queue_is_full()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 0, name: "polly", system: Sys);
        var pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter.AsRateLimiter()).Build();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var running = pipeline.ExecuteAsync(async _ =>
        {
            entered.SetResult();
            await release.Task;
            return 42;
        }).AsTask();
        await Within(entered.Task);
        Assert.Equal(1, limiter.RunningCount);

        var rejected = await Assert.ThrowsAsync<RateLimiterRejectedException>(() => pipeline.ExecuteAsync(_ => ValueTask.FromResult(0)).AsTask());

        Assert.Null(rejected.RetryAfter);
        release.SetResult();
        Assert.Equal(42, await Within(running));
        await Eventually(() => limiter.RunningCount == 0, "the pipeline gave its permit back");
        Assert.Equal(7, await pipeline.ExecuteAsync(_ => ValueTask.FromResult(7)));
    }

    [Fact]
    public async Task An_http_client_handler_bounds_the_requests_in_flight_and_answers_429_with_the_reason()
    {
        const int maxRunning = 2;
        using var limiter = new ConcurrencyLimiter(maxRunning, maxQueued: 3, name: "outbound", system: Sys);
        var backend = new CountingHandler();
        using var client = new HttpClient(new RateLimiterApps.RateLimitedHandler(limiter.AsRateLimiter()) { InnerHandler = backend });

        var responses = await Within(Task.WhenAll(Enumerable.Range(0, 12).Select(_ => client.GetAsync("http://backend.test/"))));

        Assert.InRange(backend.MostInFlight, 1, maxRunning);
        Assert.Contains(responses, response => response.StatusCode == HttpStatusCode.OK);
        var rejected = responses.Where(response => response.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(12, responses.Length);
        Assert.All(rejected, response => Assert.Contains("outbound", response.ReasonPhrase, StringComparison.Ordinal));
        Assert.Equal(12 - rejected.Count, backend.Served);
    }

    /// <summary>A local backend that records how many requests it serves at once.</summary>
    private sealed class CountingHandler : HttpMessageHandler
    {
        private int _inFlight;
        private int _most;
        private int _served;

        public int MostInFlight => Volatile.Read(ref _most);

        public int Served => Volatile.Read(ref _served);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Poll.InterlockedMax(ref _most, Interlocked.Increment(ref _inFlight));
            await Task.Delay(5, cancellationToken);
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _served);
            return new HttpResponseMessage(HttpStatusCode.OK);
        }
    }
}
