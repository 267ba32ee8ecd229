using System.Runtime.CompilerServices;
using ActorQueue.Primitives;
using ActorQueue.Runtime;

namespace ActorQueue.Tests.Primitives;

public class PrimitiveLifetimeTests : ActorQueueTestKit
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CreateAndDrop(int count)
    {
        for (var i = 0; i < count; i++)
        {
            _ = new AsyncLock(Sys);
            _ = new AsyncSemaphore(1, Sys);
            _ = new AsyncEvent(Sys);
            _ = new AsyncCapacityLimiter(2, Sys);
        }
    }

    [Fact]
    public async Task Primitives_dropped_without_dispose_do_not_leak_their_actors()
    {
        var runtime = ActorQueueExtension.Get(Sys);
        var before = runtime.LiveCoordinators;
        var startedBefore = runtime.StartedCoordinators;

        CreateAndDrop(50);
        // Some may already be finalised and stopped by a collection triggered elsewhere, so count starts, not live ones.
        await Eventually(() => runtime.StartedCoordinators == startedBefore + 200, "all 200 coordinators started");
        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return runtime.LiveCoordinators == before;
        }, Dilated(TimeSpan.FromSeconds(10)), () => $"every dropped primitive's coordinator stopped ({runtime.LiveCoordinators - before} of 200 still alive)",
        TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public async Task Disposed_primitives_stop_their_coordinators()
    {
        var runtime = ActorQueueExtension.Get(Sys);
        var before = runtime.LiveCoordinators;
        var semaphore = new AsyncSemaphore(1, Sys);
        var @event = new AsyncEvent(Sys);
        await Eventually(() => runtime.LiveCoordinators == before + 2, "started");

        await semaphore.DisposeAsync();
        @event.Dispose();

        await Eventually(() => runtime.LiveCoordinators == before, "stopped");
        Assert.Throws<ObjectDisposedException>(() => { _ = semaphore.AcquireAsync(); });
        Assert.Throws<ObjectDisposedException>(() => { _ = @event.WaitAsync(); });
    }
}
