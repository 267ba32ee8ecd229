// snippet: limiter-rate-limiting
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Polly;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;   // RateLimiting has a type of the same name
// end snippet

namespace ActorQueue.Examples;

public static class LimiterRateLimiting
{
    public static void Run(WebApplicationBuilder builder, ConcurrencyLimiter actorQueueLimiter, PartitionedConcurrencyLimiter<string> partitioned)
    {
        // snippet: limiter-rate-limiting
        RateLimiter limiter = actorQueueLimiter.AsRateLimiter();
        PartitionedRateLimiter<HttpContext> perTenant = partitioned.AsPartitionedRateLimiter<HttpContext>(
            context => context.Request.Headers["X-Tenant"].ToString());

        builder.Services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = perTenant;                                                       // ASP.NET Core
            options.AddPolicy("llm", _ => RateLimitPartition.Get("llm", _ => limiter));
        });
        var pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter).Build();            // Polly v8
        // end snippet
        GC.KeepAlive(pipeline);
    }
}
