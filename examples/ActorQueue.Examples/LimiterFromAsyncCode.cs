// snippet: limiter-async
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterFromAsyncCode
{
    public static async Task RunAsync(IConcurrencyLimiter? maybeLimiter, CancellationToken cancellationToken)
    {
        // snippet: limiter-async
        await using var limiter = new ConcurrencyLimiter(maxRunning: 4, maxQueued: 100, name: "llm-calls");

        // Hold a slot for a block; disposing the lease gives it back (idempotent).
        using (var lease = await limiter.AcquireAsync("agent:summarise", cancellationToken))
        {
            await CallModelAsync();
        }

        // Or run an operation under a slot; the slot is released however the operation ends.
        var answer = await limiter.RunAsync(ct => CallModelAsync(ct), "agent:summarise", cancellationToken);

        // An optional limiter without branching (null = no limit, no actor touched).
        await using (await ConcurrencyContext.EnterAsync(maybeLimiter, "model:gpt"))
        {
            await CallModelAsync();
        }

        // A stream holds one slot from its first item until it ends or is disposed.
        await foreach (var chunk in limiter.WrapStream(StreamTokensAsync(), "model:gpt")) { /* ... */ }
        // end snippet
        GC.KeepAlive(answer);
    }

    private static Task<string> CallModelAsync(CancellationToken cancellationToken = default) => Task.FromResult("answer");

    private static async IAsyncEnumerable<string> StreamTokensAsync()
    {
        await Task.Yield();
        yield return "token";
    }
}
