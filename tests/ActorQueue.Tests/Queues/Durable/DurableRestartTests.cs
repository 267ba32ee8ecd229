using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// The durable router restarting (an exception on its thread, here its clock throwing): the next instance takes over the
/// running tries, the waiting getters and the status, so the queue goes on with its workers and no item runs twice.
/// </summary>
public sealed class DurableRestartTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;

    public DurableRestartTests()
    {
        _store = new DurableStore(Sys);
    }

    /// <summary>
    /// Item 1 runs on the only worker when the router restarts; item 2 waits; a getter's arrival makes the router throw.
    /// Failed before: the getter failed as if the queue were disposed, the restarted router was idle without its workers
    /// (puts refused), and item 1's end, coming to an instance that had not started it, made its busy count -1. Now the
    /// getter gets item 2 from the next instance (not item 1, which that instance holds as running: a take-over that did not hold it
    /// handed item 1 out again), item 1's try ends there once, and a later put runs on the worker.
    /// </summary>
    [Fact]
    public async Task After_a_restart_the_queue_keeps_its_workers_getters_and_running_tries()
    {
        var clock = new FailingClock();
        await using var queue = new BoundedQueue<int>(10, _store.Durability(clock), DurableStore.UniqueName("restart"), system: Sys);
        await Within(queue.StartAsync());
        var runs = new ConcurrentDictionary<int, int>();
        var firstRuns = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartWorkersAsync(async item =>
        {
            runs.AddOrUpdate(item, 1, (_, n) => n + 1);
            if (item == 1)
            {
                firstRuns.TrySetResult();
                await release.Task;
            }
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(1)));
        await Within(firstRuns.Task);
        Assert.True(await Within(queue.PutAsync(2)));

        clock.FailNext(1);
        var got = await Within(queue.GetAsync());

        Assert.Equal(2, got);
        Assert.Equal(QueueStatus.Processing, queue.Status);
        queue.TaskDone();
        release.TrySetResult();
        Assert.True(await Within(queue.PutAsync(3)));
        await Within(queue.JoinAsync());
        Assert.Equal(new Dictionary<int, int> { [1] = 1, [3] = 1 }, runs.OrderBy(run => run.Key).ToDictionary());
        Assert.Equal((3L, 3L, 0), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Size));
    }

    /// <summary>
    /// The router fails again while it resumes (the fault comes back in the take-over's hand-out): Akka would restart it
    /// without end, each time recovering the journal again. The third instance stops the queue instead: the running try
    /// is cancelled and waits again, the waiting getter is told the queue is stopped, and a start runs the item to its end.
    /// A take-over that resumed all the same failed here (the getter waited, the queue stayed processing and restarted
    /// once per clock failure).
    /// </summary>
    [Fact]
    public async Task A_router_that_fails_again_while_resuming_stops_and_a_start_resumes_it()
    {
        var clock = new FailingClock();
        await using var queue = new BoundedQueue<int>(10, _store.Durability(clock), DurableStore.UniqueName("restart-again"), system: Sys);
        await Within(queue.StartAsync());
        var runs = new ConcurrentQueue<int>();
        var firstRuns = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var completed = 0;
        await queue.StartWorkersAsync(async (item, token) =>
        {
            runs.Enqueue(item);
            firstRuns.TrySetResult();
            await release.Task.WaitAsync(token);
            Interlocked.Increment(ref completed);
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(1)));
        await Within(firstRuns.Task);

        clock.FailNext(2);
        var refused = await Assert.ThrowsAsync<QueueStateException>(() => Within(queue.GetAsync()));

        Assert.Equal(QueueStatus.Stopped, refused.Status);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        release.TrySetResult();
        await Within(queue.StartAsync());
        await Within(queue.JoinAsync());
        Assert.Equal([1, 1], runs);
        Assert.Equal(1, completed);
        Assert.Equal((1L, 1L, 0L), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Metrics.Errors));
    }

    /// <summary>
    /// A stop without a timeout waits for item 1's try when item 2's try fails and the router restarts (reading its clock
    /// for the retry's due time). The next instance goes on stopping as asked: item 1's try is not cancelled, ends, and
    /// the stop completes. Failed before this change (a restart during a stop cancelled the running tries as a timeout
    /// would): item 1's work saw its token cancelled. Item 2's failed try was not journaled, so it waits again.
    /// </summary>
    [Fact]
    public async Task A_restart_during_a_stop_without_a_timeout_lets_the_running_try_finish()
    {
        var clock = new FailingClock();
        var retry = new RetryPolicy { MaxAttempts = 3, InitialDelay = TimeSpan.Zero, Jitter = 0 };
        await using var queue = new BoundedQueue<int>(10, _store.Durability(clock, retry), DurableStore.UniqueName("restart-stopping"), system: Sys);
        await Within(queue.StartAsync());
        var started = new ConcurrentDictionary<int, TaskCompletionSource>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = false;
        await queue.StartWorkersAsync(async (item, token) =>
        {
            started.GetOrAdd(item, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            if (item == 2)
            {
                await fail.Task;
                throw new InvalidOperationException("item 2's try fails (test)");
            }

            await release.Task;
            cancelled = token.IsCancellationRequested;
        }, numWorkers: 2);
        Assert.True(await Within(queue.PutAsync(1)));
        Assert.True(await Within(queue.PutAsync(2)));
        foreach (var item in new[] { 1, 2 })
        {
            await Within(started.GetOrAdd(item, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task);
        }

        var stop = queue.StopAsync(Timeout.InfiniteTimeSpan);
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, TimeSpan.FromSeconds(10), () => $"the queue is stopping (status {queue.Status})");
        clock.FailNext(1);
        fail.TrySetResult();
        await Poll.UntilAsync(() => clock.Failed, TimeSpan.FromSeconds(10), () => "the router read the failing clock");
        // Sent after the failure, a request is answered only by the next instance, once it has taken over.
        Assert.Empty(await Within(queue.DeadLettersAsync()));
        Assert.False(stop.IsCompleted);

        release.TrySetResult();
        await Within(stop);

        Assert.False(cancelled);
        Assert.Equal((QueueStatus.Stopped, 1, 1L), (queue.Status, queue.Size, queue.Metrics.Processed));
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
