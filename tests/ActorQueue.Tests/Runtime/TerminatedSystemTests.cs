using ActorQueue.Actors;
using ActorQueue.Primitives;
using Akka.Actor;

using static ActorQueue.Tests.Runtime.QuietSystems;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// Every facade on an actor system that has terminated, or is terminating: disposing it completes, and a call that
/// needs its actor's answer fails instead of waiting for an actor that is gone. The guard on each await only turns a
/// hang into a failure; it is not a timing assertion.
/// </summary>
public sealed class TerminatedSystemTests
{
    /// <summary>Every kind of facade that owns an actor, by name: creates one (in use where that matters) on a system.</summary>
    private static readonly Dictionary<string, Func<ActorSystem, Task<IAsyncDisposable>>> Facades = new()
    {
        ["ConcurrencyLimiter"] = async system =>
        {
            var limiter = new ConcurrencyLimiter(1, system: system);
            _ = await limiter.AcquireAsync(); // held, so a second caller would wait
            return limiter;
        },
        ["BoundedQueue"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 4, system: system);
            await queue.StartWorkersAsync(_ => Task.CompletedTask, 2);
            await queue.StartAsync();
            return queue;
        },
        ["WorkQueue"] = async system =>
        {
            var queue = new WorkQueue<int>(maxSize: 4, concurrencyLimit: 2, system: system);
            await queue.ProcessAsync(_ => Task.CompletedTask);
            await queue.StartAsync();
            return queue;
        },
        ["AsyncLock"] = system => Task.FromResult<IAsyncDisposable>(new AsyncLock(system)),
        ["AsyncSemaphore"] = system => Task.FromResult<IAsyncDisposable>(new AsyncSemaphore(1, system)),
        ["AsyncEvent"] = system => Task.FromResult<IAsyncDisposable>(new AsyncEvent(system)),
        ["AsyncCapacityLimiter"] = system => Task.FromResult<IAsyncDisposable>(new AsyncCapacityLimiter(2, system)),
        ["AsyncCondition"] = system => Task.FromResult<IAsyncDisposable>(new AsyncCondition(system: system)),
    };

    public static TheoryData<string> Kinds => new(Facades.Keys);

    private static ActorSystem NewSystem(string kind) => New($"terminated-{kind}");

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DisposeAsync_completes_after_the_system_has_terminated(string kind)
    {
        var system = NewSystem(kind);
        var facade = await Facades[kind](system).WaitAsync(HangGuard);
        await system.Terminate().WaitAsync(HangGuard);

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DisposeAsync_completes_while_the_system_is_terminating(string kind)
    {
        var system = NewSystem(kind);
        var facade = await Facades[kind](system).WaitAsync(HangGuard);
        var terminating = system.Terminate();

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
        await terminating.WaitAsync(HangGuard);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Dispose_and_DisposeAsync_complete_once_the_system_is_gone_also_when_both_are_called(string kind)
    {
        var system = NewSystem(kind);
        var facade = await Facades[kind](system).WaitAsync(HangGuard);
        await system.Terminate().WaitAsync(HangGuard);

        ((IDisposable)facade).Dispose();
        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
    }

    /// <summary>Each call that waits for its actor's answer, on a facade whose system has terminated: it must fail, not hang.</summary>
    public static TheoryData<string> Calls => new(CallsByName.Keys);

    private static readonly Dictionary<string, Func<ActorSystem, Task>> CallsByName = new()
    {
        ["ConcurrencyLimiter.AcquireAsync"] = async system =>
        {
            var limiter = new ConcurrencyLimiter(1, system: system);
            await system.Terminate();
            await limiter.AcquireAsync();
        },
        ["BoundedQueue.StartAsync"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 1, system: system);
            await system.Terminate();
            await queue.StartAsync();
        },
        ["BoundedQueue.PutAsync"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 1, timeout: Timeout.InfiniteTimeSpan, system: system);
            await queue.StartAsync();
            Assert.True(await queue.PutAsync(1));
            await system.Terminate();
            await queue.PutAsync(2); // the queue is full: this put goes to the router
        },
        ["BoundedQueue.PutAsync with space"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 4, system: system);
            await queue.StartAsync();
            await system.Terminate();
            await queue.PutAsync(1); // no credit survives the router: the put is refused, not accepted and lost
        },
        ["BoundedQueue.GetAsync"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 1, system: system);
            await queue.StartAsync();
            await system.Terminate();
            await queue.GetAsync();
        },
        ["BoundedQueue.DrainAsync"] = async system =>
        {
            var queue = new BoundedQueue<int>(maxSize: 1, system: system);
            await system.Terminate();
            await queue.DrainAsync();
        },
        ["AsyncLock.AcquireAsync"] = async system =>
        {
            var @lock = new AsyncLock(system);
            await system.Terminate();
            await @lock.AcquireAsync();
        },
        ["AsyncSemaphore.AcquireAsync"] = async system =>
        {
            var semaphore = new AsyncSemaphore(1, system);
            await system.Terminate();
            await semaphore.AcquireAsync();
        },
        ["AsyncEvent.WaitAsync"] = async system =>
        {
            var @event = new AsyncEvent(system);
            await system.Terminate();
            await @event.WaitAsync();
        },
        ["AsyncCapacityLimiter.AcquireAsync"] = async system =>
        {
            var limiter = new AsyncCapacityLimiter(1, system);
            await system.Terminate();
            await limiter.AcquireAsync();
        },
        ["AsyncCondition.WaitAsync"] = async system =>
        {
            var condition = new AsyncCondition(system: system);
            await condition.AcquireAsync();
            await system.Terminate();
            await condition.WaitAsync();
        },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task A_call_that_needs_a_gone_actor_fails_with_ObjectDisposedException(string call)
    {
        var system = NewSystem("call");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => CallsByName[call](system).WaitAsync(HangGuard));
    }

    [Fact]
    public async Task StopAsync_of_a_queue_whose_system_has_terminated_completes()
    {
        var system = NewSystem("stop");
        var queue = new BoundedQueue<int>(maxSize: 1, system: system);
        await queue.StartAsync().WaitAsync(HangGuard);
        await system.Terminate().WaitAsync(HangGuard);

        await queue.StopAsync().WaitAsync(HangGuard); // a stop of a queue that is gone has nothing left to do
    }
}
