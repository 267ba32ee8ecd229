using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 183), adversarial review of the three batch fixes against a disposal: a disposal while a batch waits
/// for a worker start to be sent, and a disposal racing the batch's join once every item has finished.
/// </summary>
public sealed class BatchGateDisposalRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch waits for a <c>ProcessAsync</c> being sent, and the queue is disposed before that start is sent (both made
    /// where the start is held). Expected: the start is refused as disposed, and so is the batch once the start has left
    /// (its task ends, no hang; its sequence never read); the gate is not left taken: a later batch and
    /// <c>ProcessAsync</c> are refused as disposed, never as "a batch is running". Pins the waiting batch's end; failed
    /// before: the batch was refused at once ("Expected ObjectDisposedException, Actual InvalidOperationException: Workers are being started").
    /// </summary>
    [Fact]
    public async Task A_disposal_while_a_batch_waits_for_a_worker_start_ends_both_as_disposed()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h183-wait-disposed");
        Task? batch = null;
        var sequence = new ScriptedSequence(4);
        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            batch = queue.BatchProcessAsync(sequence, _ => Task.CompletedTask);
            queue.Dispose();
        };

        await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound));
        Assert.NotNull(batch);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => batch.WaitAsync(Bound));
        Assert.Equal(0, sequence.Disposed); // never enumerated
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.BatchProcessAsync([1], _ => Task.CompletedTask).WaitAsync(Bound));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound));
    }

    /// <summary>
    /// 30 rounds: once the router has counted both items of a one-chunk batch processed, the sequence's end releases a
    /// thread that disposes the queue, racing the batch's join (refused by the facade, sent to a router that is stopping,
    /// or to one already gone, or answered before the disposal). Expected every round: the batch completes, with both
    /// items processed. Failed before (on the rounds where the disposal came before the join was
    /// sent): the batch threw <see cref="ObjectDisposedException"/> ("round 2: System.ObjectDisposedException" at the join's ThrowIfDisposed).
    /// </summary>
    [Fact]
    public async Task A_disposal_racing_the_join_after_every_item_finished_never_fails_the_batch()
    {
        for (var round = 0; round < 30; round++)
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: $"h183-join-race-{round}");
            using var barrier = new Barrier(2);
            var disposer = new Thread(() =>
            {
                barrier.SignalAndWait(Bound);
                queue.Dispose();
            }) { IsBackground = true };
            disposer.Start();
            var sequence = new ScriptedSequence(2, index =>
            {
                if (index == 2)
                {
                    Poll.UntilAsync(() => queue.Metrics.Processed == 2, Bound, "the router counted both items processed").GetAwaiter().GetResult();
                    barrier.SignalAndWait(Bound);
                }
            });
            var processed = new ConcurrentQueue<int>();
            var batch = queue.BatchProcessAsync(sequence, item =>
            {
                processed.Enqueue(item);
                return Task.CompletedTask;
            });

            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
            Assert.True(error is null, $"round {round}: {error}");
            Assert.True(disposer.Join(Bound), "the disposer did not return");
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            Assert.Equal([0, 1], processed.Order());
        }
    }
}
