using System.Net;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Time.Testing;
using Polly;
using Polly.RateLimiting;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The model-API limiter as a <see cref="RateLimiter"/> of tokens: alone, in ASP.NET Core's middleware on a TestHost, in a Polly pipeline.</summary>
public sealed class ModelApiRateLimiterTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int requestsPerMinute, long tokensPerMinute = 1000, int? maxQueued = 0) =>
        new(new ModelApiLimiterOptions(8, requestsPerMinute, tokensPerMinute, Minute) { TimeProvider = _clock, MaxQueued = maxQueued }, "model-api", system: Sys);

    [Fact]
    public async Task Permits_are_tokens_and_a_rejection_says_when_the_refill_serves_it()
    {
        using var limiter = Limiter(requestsPerMinute: 500);
        var rateLimiter = limiter.AsRateLimiter();
        using var first = await Within(rateLimiter.AcquireAsync(800).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(20));

        using var rejected = await Within(rateLimiter.AcquireAsync(300).AsTask());

        Assert.True(first.IsAcquired);
        Assert.False(rejected.IsAcquired);
        Assert.True(rejected.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(40), retryAfter);
        Assert.True(rejected.TryGetMetadata(MetadataName.ReasonPhrase, out var reason));
        Assert.Contains("model-api", reason, StringComparison.Ordinal);
        Assert.Equal(1, rateLimiter.GetStatistics()!.TotalFailedLeases);
        Assert.Same(rateLimiter, limiter.AsRateLimiter());
    }

    [Fact]
    public async Task A_synchronous_attempt_claims_from_the_rates_and_is_refused_once_they_are_spent()
    {
        using var limiter = Limiter(requestsPerMinute: 1);
        // The loan covers the minute's request from construction; the gatekeeper's first message shuts it while it lends
        // anew, and an attempt in that instant is refused: wait for the lend after that message (a status round trip).
        var rateLimiter = await ModelApiLoanTests.Lending(limiter);
        await Poll.UntilAsync(() => limiter.Loan.Covers(1), TimeSpan.FromSeconds(10), "the gatekeeper lends the minute's request");

        using var attempt = rateLimiter.AttemptAcquire(1);
        using var refused = rateLimiter.AttemptAcquire(1);
        using var queued = await Within(rateLimiter.AcquireAsync(1).AsTask());

        Assert.True(attempt.IsAcquired);
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.ReasonPhrase, out _));
        Assert.False(queued.IsAcquired, "the minute's one request was claimed");
        Assert.True(queued.TryGetMetadata(MetadataName.RetryAfter, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => rateLimiter.AttemptAcquire(1001));
    }

    [Fact]
    public async Task Asp_net_core_middleware_answers_429_with_retry_after_once_the_minutes_requests_are_spent()
    {
        using var limiter = Limiter(requestsPerMinute: 2);
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = (context, _) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                return ValueTask.CompletedTask;
            };
            options.AddPolicy("model", _ => RateLimitPartition.Get("all", _ => limiter.AsRateLimiter()));
        });
        await using var app = builder.Build();
        app.UseRateLimiter();
        app.MapGet("/chat", () => "ok").RequireRateLimiting("model");
        await app.StartAsync();
        using var client = app.GetTestServer().CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await Within(client.GetAsync("/chat"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Within(client.GetAsync("/chat"))).StatusCode);
        _clock.Advance(TimeSpan.FromSeconds(15));
        using var third = await Within(client.GetAsync("/chat"));

        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("45", Assert.Single(third.Headers.GetValues("Retry-After")));
        _clock.Advance(TimeSpan.FromSeconds(45));
        Assert.Equal(HttpStatusCode.OK, (await Within(client.GetAsync("/chat"))).StatusCode);
    }

    [Fact]
    public async Task A_polly_pipeline_is_rejected_with_the_retry_after_of_the_tokens_rate()
    {
        using var limiter = Limiter(requestsPerMinute: 500, tokensPerMinute: 1);
        var pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter.AsRateLimiter()).Build();

        Assert.Equal(42, await Within(pipeline.ExecuteAsync(_ => ValueTask.FromResult(42)).AsTask()));
        _clock.Advance(TimeSpan.FromSeconds(50));
        var error = await Assert.ThrowsAsync<RateLimiterRejectedException>(() => Within(pipeline.ExecuteAsync(_ => ValueTask.FromResult(43)).AsTask()));

        Assert.Equal(TimeSpan.FromSeconds(10), error.RetryAfter);
        await Eventually(() => limiter.RunningCount == 0, "the granted call gave its slot back");
    }
    /// <summary>
    /// A wait timeout is a rejection like the others: its lease says when the refill comes that would serve the call
    /// (it had none), and its reason names the limiter without calling the rate that ran out "concurrency" (it did).
    /// </summary>
    [Fact]
    public async Task A_wait_timeout_says_when_the_refill_serves_it_and_does_not_blame_concurrency()
    {
        using var limiter = new ModelApiLimiter(
            new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock, WaitTimeout = TimeSpan.FromSeconds(5) }, "model-api", system: Sys);
        var rateLimiter = limiter.AsRateLimiter();
        using var first = await Within(rateLimiter.AcquireAsync(800).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(20));
        var waiting = rateLimiter.AcquireAsync(300).AsTask();
        var probe = CreateTestProbe();
        await AwaitAssertAsync(async () =>
        {
            limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
            Assert.Equal(1, (await probe.ExpectMsgAsync<GatekeeperProtocol.Status>()).Waiting);
        });

        _clock.Advance(TimeSpan.FromSeconds(5));
        using var timedOut = await Within(waiting);

        Assert.False(timedOut.IsAcquired);
        Assert.True(timedOut.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "a timed-out wait carries RetryAfter");
        Assert.Equal(TimeSpan.FromSeconds(35), retryAfter);
        Assert.True(timedOut.TryGetMetadata(MetadataName.ReasonPhrase, out var reason));
        Assert.Contains("model-api", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("concurrency", reason, StringComparison.Ordinal);
    }
    /// <summary>
    /// A caller waiting in the adapter when its limiter is disposed gets a failed lease saying so, as a waiter of
    /// RateLimiting's own limiters does (and as the concurrency and partitioned adapters do); a call made after the
    /// disposal still throws <see cref="ObjectDisposedException"/>. Failed before: the waiter's task threw
    /// ObjectDisposedException.
    /// </summary>
    [Fact]
    public async Task A_waiter_failed_by_the_limiters_disposal_gets_a_failed_lease()
    {
        var limiter = Limiter(requestsPerMinute: 1, maxQueued: null);
        var rateLimiter = limiter.AsRateLimiter();
        using var first = await Within(rateLimiter.AcquireAsync(10).AsTask());
        var waiting = rateLimiter.AcquireAsync(10).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits for the next minute's request");

        limiter.Dispose();
        using var lease = await Within(waiting);

        Assert.True(first.IsAcquired);
        Assert.False(lease.IsAcquired);
        Assert.True(lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && reason!.Contains("disposed", StringComparison.Ordinal), reason);
        Assert.Equal(1, rateLimiter.GetStatistics()!.TotalFailedLeases);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await rateLimiter.AcquireAsync(10));
    }
}
