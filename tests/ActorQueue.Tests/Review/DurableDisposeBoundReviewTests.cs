using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;
using Serilog;
using Serilog.Events;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the durable queue's disposal by helper 139: the durable router had the Stopping shape the in-memory router
/// had before helper 137's fix (a later stop or a disposal only queued, a worker that ignores its token holding the
/// disposal for ever). Every item a bounded disposal leaves unfinished must stay in the journal and run again.
/// </summary>
public sealed class DurableDisposeBoundReviewTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;

    public DurableDisposeBoundReviewTests()
    {
        _store = new DurableStore(Sys);
    }

    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>An actor system of the test's own whose queues' stop timeout (a disposal's) is 1 s.</summary>
    private static ActorSystem OwnSystem(string name) =>
        ActorSystem.Create(name, ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueueRuntime.DefaultConfig));

    /// <summary>
    /// Failed before: DisposeAsync had not completed 60 s (the dilated bound, 20 s × 3) after it was called, in both cases (the
    /// worker honours its token; the disposal's timeout is 1 s). The disposal's StopQueue reached the durable router's
    /// Stopping behaviour, which only added it to the stops waiting (DurableRouterActor.Lifecycle.cs) and started no
    /// timer. Expected: the disposal's timeout ends the grace period, the cancelled item goes back, and both items are
    /// still in the journal: the queue opened again holds them.
    /// </summary>
    [Theory]
    [InlineData(-1)] // Timeout.InfiniteTimeSpan
    [InlineData(3_600_000)] // an hour
    public async Task A_disposal_during_a_long_stop_cancels_the_work_after_its_own_timeout_and_keeps_the_items(int stopTimeoutMs)
    {
        var system = OwnSystem("r139-durable-dispose-during-stop");
        var name = DurableStore.UniqueName("r139-long-stop");
        try
        {
            var queue = await RunningOne(new BoundedQueue<int>(10, _store.Durability(), name, system: system), (_, ct) => Task.Delay(Timeout.Infinite, ct));
            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
            var stop = queue.StopAsync(TimeSpan.FromMilliseconds(stopTimeoutMs));
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");

            var dispose = queue.DisposeAsync().AsTask();
            var disposed = await Poll.CompletesWithin(dispose, Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s) during StopAsync({stopTimeoutMs} ms): {queue.Metrics}");
            await stop.WaitAsync(Bound);
            Assert.Equal(0, queue.Metrics.Processed);
            Assert.Equal([1, 2], await Reopened(system, name));
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: the second stop had not completed 60 s (the dilated bound, 20 s × 3) after it was called; only the first
    /// stop's timeout (none) counted. Graceful, then forced: the later, shorter deadline ends the grace period.
    /// </summary>
    [Fact]
    public async Task A_second_stop_with_a_shorter_timeout_ends_the_grace_period_sooner()
    {
        var system = OwnSystem("r139-durable-forced-stop");
        var name = DurableStore.UniqueName("r139-forced-stop");
        try
        {
            var queue = await RunningOne(new BoundedQueue<int>(10, _store.Durability(), name, system: system), (_, ct) => Task.Delay(Timeout.Infinite, ct));
            var graceful = queue.StopAsync(Timeout.InfiniteTimeSpan);
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");

            var forced = queue.StopAsync(TimeSpan.Zero);

            Assert.True(await Poll.CompletesWithin(forced, Bound),
                $"StopAsync(TimeSpan.Zero) during StopAsync(Infinite) had not completed after {Bound.TotalSeconds} s");
            await graceful.WaitAsync(Bound);
            Assert.Equal((QueueStatus.Stopped, 1, 0L), (queue.Status, queue.Size, queue.Metrics.Processed)); // the cancelled item waits again
            Assert.Equal([1], await queue.DrainAsync().WaitAsync(Bound));
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: DisposeAsync had not completed 60 s (the dilated bound, 20 s × 3) after it was called (disposal timeout 1 s),
    /// nor would it ever while the worker ran: the router waited for the try's end (CheckStopped waits for no busy
    /// worker) and the cancelled token did nothing. Expected: once the grace period is over, the disposal waits for the
    /// cancelled work at most its own timeout, logs that it leaves the worker behind, and stops; the item the worker
    /// held has no end journaled, so it runs again when the queue is opened again, with the item queued behind it.
    /// </summary>
    [Fact]
    public async Task A_disposal_is_not_held_for_ever_by_a_worker_that_ignores_its_token_and_its_item_stays_journaled()
    {
        var system = OwnSystem("r139-durable-deaf-worker");
        var name = DurableStore.UniqueName("r139-deaf-worker");
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new CapturingSink();
        try
        {
            var queue = await RunningOne(new BoundedQueue<int>(10, _store.Durability(), name, logger: new LoggerConfiguration().WriteTo.Sink(logs).CreateLogger(), system: system),
                (_, _) => hold.Task); // never looks at its token
            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));

            var dispose = queue.DisposeAsync().AsTask();
            var disposed = await Poll.CompletesWithin(dispose, Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s): a worker ignoring its token holds it ({queue.Metrics})");
            Assert.Contains(logs.Events, e => e.Level == LogEventLevel.Warning && e.RenderMessage().Contains("1 workers still running", StringComparison.Ordinal));
            Assert.Equal([1, 2], await Reopened(system, name)); // nothing lost: the abandoned try's item has no end journaled
        }
        finally
        {
            hold.TrySetResult();
            await system.Terminate();
        }
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }

    /// <summary>Starts <paramref name="queue"/> with one worker running <paramref name="work"/>, puts item 1 and waits until its work runs.</summary>
    private async Task<BoundedQueue<int>> RunningOne(BoundedQueue<int> queue, Func<int, CancellationToken, Task> work)
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync((item, ct) =>
        {
            running.TrySetResult();
            return work(item, ct);
        }, numWorkers: 1).WaitAsync(Bound);
        Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
        await running.Task.WaitAsync(Bound);
        return queue;
    }

    /// <summary>The items the queue <paramref name="name"/> holds when opened again (drained, in their order).</summary>
    private async Task<IReadOnlyList<int>> Reopened(ActorSystem system, string name)
    {
        await using var reopened = new BoundedQueue<int>(10, _store.Durability(), name, system: system);
        return await reopened.DrainAsync().WaitAsync(Bound);
    }
}
