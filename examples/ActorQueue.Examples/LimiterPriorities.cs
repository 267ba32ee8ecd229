// snippet: limiter-priorities
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterPriorities
{
    public static async Task RunAsync()
    {
        // snippet: limiter-priorities
        var limiter = new ConcurrencyLimiter(4, maxQueued: 100, name: "llm",
                                             whenFull: QueueFullMode.EvictLowestPriorityNewest);
        using var urgent = await limiter.AcquireAsync(permits: 1, priority: 10, source: "user-facing");
        using var batch = await limiter.AcquireAsync(permits: 1, priority: 0, source: "nightly");
        // end snippet
        await limiter.DisposeAsync();
    }
}
