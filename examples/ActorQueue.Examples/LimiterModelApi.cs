// snippet: limiter-model-api
using ActorQueue.Actors;
using Polly;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterModelApi
{
    public static async Task RunAsync(string apiKey, CancellationToken ct)
    {
        // snippet: limiter-model-api
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 500, tokensPerPeriod: 200_000, period: TimeSpan.FromMinutes(1))
        {
            MaxQueued = 1_000,                        // optional: bound the waiters
            WaitTimeout = TimeSpan.FromSeconds(30),   // optional: how long a call may wait (per call too)
        };
        await using var limiter = new ModelApiLimiter(options, name: "openai");

        using (var lease = await limiter.AcquireAsync(estimatedTokens: 3_000, cancellationToken: ct))
        {
            var reply = await CallModelAsync(ct);
            lease.Settle(reply.Usage.TotalTokens);        // once, before the lease is disposed
        }

        // One limit per API key: each key its own slots, requests and tokens; an idle key is stopped only once its
        // minute has refilled and its debt is paid, so a key that comes back never gets a fresh minute early.
        await using var perKey = new PartitionedModelApiLimiter<string>(options, idleTimeout: TimeSpan.FromMinutes(5));
        using var keyed = await perKey.AcquireAsync(apiKey, estimatedTokens: 3_000);

        // ASP.NET Core's middleware and Polly take it as a RateLimiter whose permits are tokens; a rejection's lease
        // carries RetryAfter (when the refill, or a window's segment sliding out, comes that serves it, after the demand
        // already queued, however many periods that takes).
        var pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter.AsRateLimiter()).Build();
        // end snippet
        GC.KeepAlive(pipeline);
    }

    private static Task<ModelReply> CallModelAsync(CancellationToken cancellationToken) => Task.FromResult(new ModelReply(new ModelUsage(TotalTokens: 2_500)));

    private sealed record ModelReply(ModelUsage Usage);

    private sealed record ModelUsage(long TotalTokens);
}
