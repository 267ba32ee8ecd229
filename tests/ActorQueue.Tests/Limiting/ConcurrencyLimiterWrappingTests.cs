using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>pydantic-ai's limiter wrappers: the limiter context, runs, wrapped models and streams hold a slot, and a limit converts from an int or a ConcurrencyLimit.</summary>
public class ConcurrencyLimiterWrappingTests : ActorQueueTestKit
{
    private ConcurrencyLimiter NewLimiter(int maxRunning, int? maxQueued = null, string? name = null) =>
        new(maxRunning, maxQueued, name, system: Sys);

    [Fact]
    public async Task Null_limiter_context_is_a_no_op()
    {
        await using (await ConcurrencyContext.EnterAsync(null, "test"))
        {
        }
    }

    [Fact]
    public async Task Limiter_context_holds_a_slot_until_disposed()
    {
        var limiter = NewLimiter(1);
        await using (await ConcurrencyContext.EnterAsync(limiter, "test"))
        {
            await Eventually(() => limiter.RunningCount == 1, "the context holds the slot");
        }

        await Eventually(() => limiter.RunningCount == 0, "leaving the context gave it back");
    }

    [Fact]
    public async Task A_limit_of_two_caps_five_concurrent_runs()
    {
        var limiter = NewLimiter(2);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var maxInside = 0;

        var runs = Enumerable.Range(0, 5).Select(i => limiter.RunAsync(async _ =>
        {
            Poll.InterlockedMax(ref maxInside, Interlocked.Increment(ref inside));
            await gate.Task;
            Interlocked.Decrement(ref inside);
            return i;
        }, "agent")).ToArray();

        await Eventually(() => Volatile.Read(ref inside) == 2 && limiter.WaitingCount == 3, "two run, three wait");
        gate.SetResult();

        var results = await Within(Task.WhenAll(runs));
        Assert.Equal([0, 1, 2, 3, 4], results);
        Assert.Equal(2, maxInside);
    }

    [Fact]
    public async Task A_shared_limiter_caps_operations_across_two_wrapped_models()
    {
        var shared = NewLimiter(2);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var maxInside = 0;

        async Task<string> Model(string name, CancellationToken _)
        {
            Poll.InterlockedMax(ref maxInside, Interlocked.Increment(ref inside));
            await gate.Task;
            Interlocked.Decrement(ref inside);
            return name;
        }

        var calls = Enumerable.Range(0, 3).Select(i => shared.RunAsync(ct => Model($"model1-{i}", ct), "model:1"))
            .Concat(Enumerable.Range(0, 3).Select(i => shared.RunAsync(ct => Model($"model2-{i}", ct), "model:2")))
            .ToArray();

        await Eventually(() => Volatile.Read(ref inside) == 2 && shared.WaitingCount == 4, "two of six run");
        gate.SetResult();
        await Task.WhenAll(calls);

        Assert.Equal(2, maxInside);
        await Eventually(() => shared.RunningCount == 0, "all released");
    }

    [Fact]
    public void From_limit_takes_an_int_or_a_ConcurrencyLimit()
    {
        using var fromInt = ConcurrencyLimiter.FromLimit(5, system: Sys);
        using var fromLimit = ConcurrencyLimiter.FromLimit(new ConcurrencyLimit(5, 10), name: "pool", system: Sys);

        Assert.Equal((5, (int?)null), (fromInt.MaxRunning, fromInt.MaxQueued));
        Assert.Equal((5, (int?)10, "pool"), (fromLimit.MaxRunning, fromLimit.MaxQueued, fromLimit.Name));
    }

    [Fact]
    public async Task Run_async_delegates_to_the_operation_once_and_returns_its_result()
    {
        var limiter = NewLimiter(5);
        var calls = 0;

        var result = await limiter.RunAsync(_ =>
        {
            Interlocked.Increment(ref calls);
            return Task.FromResult("usage");
        }, "count_tokens");

        Assert.Equal("usage", result);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task A_wrapped_stream_holds_its_slot_from_the_first_item_to_the_end()
    {
        var limiter = NewLimiter(1);
        var seenWhileStreaming = new List<int>();

        await foreach (var item in limiter.WrapStream(Numbers(3), "request_stream"))
        {
            seenWhileStreaming.Add(limiter.RunningCount);
        }

        Assert.Equal(3, seenWhileStreaming.Count);
        await Eventually(() => limiter.RunningCount == 0, "the stream's end gave the slot back");
        Assert.Equal(1, await Task.Run(async () =>
        {
            await using var e = limiter.WrapStream(Numbers(3), "s").GetAsyncEnumerator();
            await e.MoveNextAsync();
            await Eventually(() => limiter.RunningCount == 1, "the slot is held during enumeration");
            return limiter.RunningCount;
        }));
        await Eventually(() => limiter.RunningCount == 0, "disposing the enumerator early gave the slot back");
    }

    private static async IAsyncEnumerable<int> Numbers(int count)
    {
        for (var i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }
}
