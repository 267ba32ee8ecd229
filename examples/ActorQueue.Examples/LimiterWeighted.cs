// snippet: limiter-weighted
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterWeighted
{
    public static async Task RunAsync()
    {
        // snippet: limiter-weighted
        await using var tokens = new ConcurrencyLimiter(maxRunning: 8, name: "gpu-memory-gb");
        using var lease = await tokens.AcquireAsync(permits: 3, source: "embed-batch");   // lease.Permits == 3
        // end snippet
    }
}
