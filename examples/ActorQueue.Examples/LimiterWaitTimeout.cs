// snippet: limiter-wait-timeout
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterWaitTimeout
{
    public static async Task RunAsync()
    {
        // snippet: limiter-wait-timeout
        var limiter = new ConcurrencyLimiter(4, name: "llm", waitTimeout: TimeSpan.FromSeconds(30));   // default for every call
        using var lease = await limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.FromSeconds(2)); // this call only
        // end snippet
        await limiter.DisposeAsync();
    }
}
