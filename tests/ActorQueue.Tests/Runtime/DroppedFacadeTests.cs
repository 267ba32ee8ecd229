using System.Runtime.CompilerServices;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// A limiter or queue dropped without Dispose stops the actors it owns from a finaliser, as the primitives do: a
/// program that forgets to dispose leaks no actors.
/// </summary>
public sealed class DroppedFacadeTests : ActorQueueTestKit
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    private IActorRef DropLimiter() => new ConcurrencyLimiter(2, system: Sys).Gatekeeper;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<(IActorRef Gatekeeper, ConcurrencyLease Lease)> DropLimiterHoldingALease()
    {
        var limiter = new ConcurrencyLimiter(1, system: Sys);
        return (limiter.Gatekeeper, await limiter.AcquireAsync());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private IActorRef DropIdleQueue() => new BoundedQueue<int>(maxSize: 4, system: Sys).Router;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<IActorRef> DropProcessingQueue()
    {
        var queue = new BoundedQueue<int>(maxSize: 4, system: Sys);
        await queue.StartWorkersAsync(_ => Task.CompletedTask, 2);
        await queue.StartAsync();
        return queue.Router;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (IActorRef Router, IActorRef Gatekeeper) DropWorkQueue()
    {
        var queue = new WorkQueue<int>(maxSize: 4, concurrencyLimit: 2, system: Sys);
        return (queue.Router, ((ConcurrencyLimiter)queue.Limiter!).Gatekeeper);
    }

    /// <summary>Collects garbage until every actor in <paramref name="actors"/> has stopped, as seen by a watching probe.</summary>
    private async Task CollectUntilStopped(params IActorRef[] actors)
    {
        var probe = CreateTestProbe();
        foreach (var actor in actors)
        {
            probe.Watch(actor);
        }

        var stopped = new HashSet<IActorRef>();
        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            while (probe.ReceiveOne(TimeSpan.Zero) is Terminated terminated)
            {
                stopped.Add(terminated.ActorRef);
            }

            return stopped.Count == actors.Length;
        }, Dilated(TimeSpan.FromSeconds(10)), () => $"every dropped facade's actor stopped ({actors.Length - stopped.Count} of {actors.Length} still alive)",
        TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public async Task A_limiter_dropped_without_dispose_stops_its_gatekeeper()
    {
        await CollectUntilStopped(DropLimiter());
    }

    [Fact]
    public async Task A_limiter_dropped_while_a_lease_is_held_stops_and_the_lease_still_disposes()
    {
        var (gatekeeper, lease) = await DropLimiterHoldingALease();

        await CollectUntilStopped(gatekeeper);
        lease.Dispose();
        Assert.True(lease.IsReleased);
    }

    [Fact]
    public async Task An_idle_queue_dropped_without_dispose_stops_its_router()
    {
        await CollectUntilStopped(DropIdleQueue());
    }

    [Fact]
    public async Task A_processing_queue_dropped_without_dispose_stops_its_router_and_workers()
    {
        await CollectUntilStopped(await DropProcessingQueue());
    }

    [Fact]
    public async Task A_work_queue_dropped_without_dispose_stops_its_router_and_its_own_limiter()
    {
        var (router, gatekeeper) = DropWorkQueue();
        await CollectUntilStopped(router, gatekeeper);
    }
}
