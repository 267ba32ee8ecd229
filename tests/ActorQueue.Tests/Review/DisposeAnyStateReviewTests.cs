using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;
using ActorQueue.Actors;
using Akka.Actor;

using static ActorQueue.Tests.Runtime.QuietSystems;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Every dispose completes whatever state the actor system is in, and a caller waiting at that moment gets an answer.
/// The guard on each await only turns a hang into a failure; it is not a timing assertion. The system terminating stops
/// each facade's actor without a dispose request: its PostStop must still fail the waiters it holds (a mutant PostStop that
/// closed only on a dispose request left them waiting for ever, as the later Dispose's request went to dead letters).
/// </summary>
public sealed class DisposeAnyStateReviewTests
{
    private static ActorSystem NewSystem(string kind) => New($"dispose-any-{kind.Replace('.', '-')}");

    /// <summary>A facade with one slot held and a caller waiting behind it: the facade and the waiter's task.</summary>
    private static readonly Dictionary<string, Func<ActorSystem, Task<(IAsyncDisposable Facade, Task Waiter)>>> Waiting = new()
    {
        ["ConcurrencyLimiter"] = async system =>
        {
            var limiter = new ConcurrencyLimiter(OneSlot, system: system);
            _ = await limiter.AcquireAsync();
            var waiter = limiter.AcquireAsync().AsTask();
            await Until(() => limiter.WaitingCount == 1);
            return (limiter, waiter);
        },
        ["ModelApiLimiter"] = async system =>
        {
            var limiter = new ModelApiLimiter(OneCall, system: system);
            _ = await limiter.AcquireAsync(1);
            var waiter = limiter.AcquireAsync(1).AsTask();
            await Until(() => limiter.WaitingCount == 1);
            return (limiter, waiter);
        },
        ["PartitionedConcurrencyLimiter"] = async system =>
        {
            var limiter = new PartitionedConcurrencyLimiter<string>(OneSlot, TimeSpan.FromMinutes(5), system: system);
            _ = await limiter.AcquireAsync("k");
            var waiter = limiter.AcquireAsync("k").AsTask();
            await Poll.ValueAsync(() => limiter.GetStatisticsAsync(), s => s.TryGetValue("k", out var p) && p.Waiting == 1, HangGuard);
            return (limiter, waiter);
        },
        ["PartitionedModelApiLimiter"] = async system =>
        {
            var limiter = new PartitionedModelApiLimiter<string>(OneCall, TimeSpan.FromMinutes(5), system: system);
            _ = await limiter.AcquireAsync("k", 1);
            var waiter = limiter.AcquireAsync("k", 1).AsTask();
            await Until(() => limiter.GetStatistics().TryGetValue("k", out var s) && s.Waiting == 1);
            return (limiter, waiter);
        },
        ["BoundedQueue"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 1, timeout: Timeout.InfiniteTimeSpan, system: system);
            await queue.StartAsync();
            Assert.True(await queue.PutAsync(1));
            var waiter = queue.PutAsync(2); // the queue is full: this put waits (nothing counts a put that waits)
            Assert.False(waiter.IsCompleted);
            return (queue, waiter);
        },
        ["ConcurrencyLimiter.AsRateLimiter"] = async system =>
        {
            var limiter = new ConcurrencyLimiter(OneSlot, system: system);
            var adapter = limiter.AsRateLimiter();
            Assert.True((await adapter.AcquireAsync(1)).IsAcquired);
            var waiter = adapter.AcquireAsync(1).AsTask();
            await Until(() => limiter.WaitingCount == 1);
            return (limiter, waiter);
        },
        ["ModelApiLimiter.AsRateLimiter"] = async system =>
        {
            var limiter = new ModelApiLimiter(OneCall, system: system);
            var adapter = limiter.AsRateLimiter();
            Assert.True((await adapter.AcquireAsync(1)).IsAcquired);
            var waiter = adapter.AcquireAsync(1).AsTask();
            await Until(() => limiter.WaitingCount == 1);
            return (limiter, waiter);
        },
        ["PartitionedConcurrencyLimiter.AsPartitionedRateLimiter"] = async system =>
        {
            var limiter = new PartitionedConcurrencyLimiter<string>(OneSlot, TimeSpan.FromMinutes(5), system: system);
            var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
            Assert.True((await adapter.AcquireAsync("k", 1)).IsAcquired);
            var waiter = adapter.AcquireAsync("k", 1).AsTask();
            await Poll.ValueAsync(() => limiter.GetStatisticsAsync(), s => s.TryGetValue("k", out var p) && p.Waiting == 1, HangGuard);
            return (limiter, waiter);
        },
        ["WorkQueue"] = async system =>
        {
            var queue = new WorkQueue<int>(maxSize: 1, timeout: Timeout.InfiniteTimeSpan, concurrencyLimit: 1, system: system);
            await queue.StartAsync();
            Assert.True(await queue.PutAsync(1));
            var waiter = queue.PutAsync(2); // the queue is full and nobody processes: this put waits
            Assert.False(waiter.IsCompleted);
            return (queue, waiter);
        },
    };

    public static TheoryData<string> Kinds => new(Waiting.Keys);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_waiter_gets_an_answer_when_the_system_terminates_and_the_facade_is_disposed(string kind)
    {
        var system = NewSystem(kind);
        var (facade, waiter) = await Waiting[kind](system).WaitAsync(HangGuard);
        await system.Terminate().WaitAsync(HangGuard);

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
        await Answered(waiter);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_waiter_gets_an_answer_when_the_facade_is_disposed_while_the_system_terminates(string kind)
    {
        var system = NewSystem(kind);
        var (facade, waiter) = await Waiting[kind](system).WaitAsync(HangGuard);
        var terminating = system.Terminate();

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
        await Answered(waiter);
        await terminating.WaitAsync(HangGuard);
    }

    private static Task Until(Func<bool> condition) => Poll.UntilAsync(condition, HangGuard, "the caller waits");

    /// <summary>The waiter completed: granted, or failed with a reason (never still waiting).</summary>
    private static async Task Answered(Task waiter)
    {
        try
        {
            await waiter.WaitAsync(HangGuard);
        }
        catch (TimeoutException)
        {
            throw;
        }
        catch (Exception error)
        {
            Assert.True(error is ObjectDisposedException or OperationCanceledException or ConcurrencyLimitExceededException or QueueStateException,
                        $"waiter failed with {error.GetType().Name}: {error.Message}");
        }
    }
}
