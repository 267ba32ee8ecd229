using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 183): a batch that starts while a worker start (<c>ProcessAsync</c>, <c>Queue.StartWorkersAsync</c>)
/// is being sent. The start is held at the exact point where it has entered the queue's worker gate and not yet sent
/// its message (<see cref="BoundedQueue{T}.WorkerStartSending"/>), and the batch is started there, on that thread.
/// </summary>
public sealed class BatchStartGateRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch started while a <c>ProcessAsync</c> is being sent (capacity 2, one worker, items 1..5). Expected: the
    /// batch does not complete at once (it waits for the start to be sent, without blocking the sender, who is the
    /// caller here), then runs: every item is handled once, by the batch's worker function, never by the
    /// <c>ProcessAsync</c>'s, which completes too; the queue is stopped after the batch. Failed before: the batch was
    /// refused at once ("InvalidOperationException: Workers are being started on queue h183-start-held ... as this
    /// batch starts"), though the start it met conflicted with nothing once sent.
    /// </summary>
    [Fact]
    public async Task A_batch_started_while_a_worker_start_is_being_sent_waits_for_it_and_runs()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h183-start-held");
        var handled = new ConcurrentQueue<(string By, int Item)>();
        Task? batch = null;
        var completedAtOnce = false;
        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            batch = queue.BatchProcessAsync(Enumerable.Range(1, 5), item =>
            {
                handled.Enqueue(("batch", item));
                return Task.CompletedTask;
            });
            completedAtOnce = batch.IsCompleted;
        };

        await queue.ProcessAsync(item =>
        {
            handled.Enqueue(("process", item));
            return Task.CompletedTask;
        }).WaitAsync(Bound);

        Assert.NotNull(batch);
        await batch.WaitAsync(Bound);
        Assert.False(completedAtOnce, "the batch completed before the start it met was sent");
        Assert.Equal(Enumerable.Range(1, 5), handled.Select(h => h.Item).Order());
        Assert.All(handled, h => Assert.Equal("batch", h.By));
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    /// <summary>
    /// Two batches started while one <c>Queue.StartWorkersAsync</c> is being sent (capacity 2, one worker; each batch's
    /// items wait until the other batch has ended, so the one that runs outlives the other's decision). Expected: both
    /// wait for the start; then exactly one runs (each of its items handled once, by its own function) and the other is
    /// refused as a batch already running — the refusal that stays correct. Failed before: both were refused at once as
    /// "Workers are being started" ("Assert.Single() Failure: The collection was empty" for the batch that ran).
    /// </summary>
    [Fact]
    public async Task Two_batches_waiting_for_one_start_run_one_and_refuse_the_other_as_already_running()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h183-two-wait");
        var handled = new ConcurrentQueue<(string By, int Item)>();
        var oneEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batches = new Task[2];
        Func<int, Task> By(string who) => async item =>
        {
            handled.Enqueue((who, item));
            await oneEnded.Task;
        };

        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            batches[0] = queue.BatchProcessAsync(Enumerable.Range(0, 4), By("a"));
            batches[1] = queue.BatchProcessAsync(Enumerable.Range(100, 4), By("b"));
            foreach (var batch in batches)
            {
                _ = batch.ContinueWith(_ => oneEnded.TrySetResult(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        };

        await queue.Queue.StartWorkersAsync(_ => Task.CompletedTask, 1).WaitAsync(Bound);
        var outcomes = new Exception?[2];
        for (var i = 0; i < 2; i++)
        {
            outcomes[i] = await Record.ExceptionAsync(() => batches[i].WaitAsync(Bound));
        }

        var ran = Assert.Single(Enumerable.Range(0, 2), i => outcomes[i] is null);
        var refused = Assert.IsType<InvalidOperationException>(outcomes[1 - ran]);
        Assert.Contains("already running", refused.Message);
        var (who, first) = ran == 0 ? ("a", 0) : ("b", 100);
        Assert.Equal(Enumerable.Range(first, 4), handled.Select(h => h.Item).Order());
        Assert.All(handled, h => Assert.Equal(who, h.By));
    }
}
