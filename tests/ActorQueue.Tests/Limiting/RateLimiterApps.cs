using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.TestHost;

namespace ActorQueue.Tests.Limiting;

/// <summary>The integrations the rate-limiter adapters are tested in, as their users write them (shared with the cluster tests).</summary>
internal static class RateLimiterApps
{
    /// <summary>
    /// An app whose endpoint <c>/work</c> (policy <c>actorqueue</c>) holds its permit until <paramref name="release"/>
    /// completes, limited by <paramref name="configure"/>; a rejection is 429 with the lease's reason in <c>X-Reason</c>.
    /// </summary>
    internal static async Task<TestServer> StartAppAsync(Action<RateLimiterOptions> configure, Task release, Action? entered = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = (context, _) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason))
                {
                    context.HttpContext.Response.Headers["X-Reason"] = reason;
                }

                return ValueTask.CompletedTask;
            };
            configure(options);
        });
        var app = builder.Build();
        app.UseRateLimiter();
        app.MapGet("/work", async () =>
        {
            entered?.Invoke();
            await release;
            return "done";
        }).RequireRateLimiting("actorqueue");
        await app.StartAsync();
        return app.GetTestServer();
    }

    /// <summary>The DelegatingHandler a user writes around any RateLimiter, as in the RateLimiting documentation.</summary>
    internal sealed class RateLimitedHandler(RateLimiter limiter) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            using var lease = await limiter.AcquireAsync(1, cancellationToken);
            if (!lease.IsAcquired)
            {
                lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason);
                return new HttpResponseMessage(HttpStatusCode.TooManyRequests) { ReasonPhrase = reason };
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
