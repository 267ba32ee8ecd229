using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second-wave review (helper 170) of helper 166's batch changes: a durable batch refused while its admitted items are
/// written is answered only once those writes end (<c>BatchPut.Unwritten</c>), and <c>BatchProcessAsync</c> ends a refused
/// batch by joining and stopping its queue. Here the writes never end (a journal that does not answer): the batch must still
/// end, and its queue's disposal must still complete within its bound, with every item read accounted for once.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class BatchAnswerReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20)); // turns a hang into a failure (the disposal's own bound is 2 s here)

    /// <summary>
    /// A batch on a durable queue (capacity 3, stop timeout 1 s, one worker that waits for its token) whose second chunk's
    /// first item (3) is in a write the journal never answers, 4 and 5 waiting for space; then the queue is disposed.
    /// Expected: the disposal completes (it detaches from the journal after its bound), the batch ends with the disposal's
    /// refusal, and 3, 4 and 5 each go to the handler once (3 "may have been stored"). Passes: the detach answers the
    /// refused batch (its unwritten item is refused with the write's unknown outcome).
    /// </summary>
    [Fact]
    public async Task A_batch_whose_write_never_ends_still_ends_when_its_queue_is_disposed()
    {
        await WriteGatedJournal.OnHangingJournal("h170-hang-dispose", async system =>
        {
            var (queue, batch, reported) = await BatchHeldInWrite(system, "h170-hang-dispose", CancellationToken.None);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));

            Assert.NotNull(error);
            Assert.Equal([3, 4, 5], reported.Select(r => r.Item).Order());
        });
    }

    /// <summary>
    /// The same batch cancelled while its write hangs (the stop at once waits for the write, as every stop does), then its
    /// queue disposed. Expected: the disposal completes and the batch ends with <see cref="OperationCanceledException"/>,
    /// 3, 4 and 5 each reported once.
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_whose_write_never_ends_still_ends_when_its_queue_is_disposed()
    {
        await WriteGatedJournal.OnHangingJournal("h170-hang-cancel", async system =>
        {
            using var cancel = new CancellationTokenSource();
            var (queue, batch, reported) = await BatchHeldInWrite(system, "h170-hang-cancel", cancel.Token);
            cancel.Cancel();
            await Poll.ValueAsync(() => Task.FromResult(queue.Status), status => status != QueueStatus.Processing, Bound);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));

            Assert.IsAssignableFrom<OperationCanceledException>(error);
            Assert.Equal([3, 4, 5], reported.Select(r => r.Item).Order());
        });
    }

    /// <summary>A batch (capacity 3, one worker holding 0) whose item 3 is in a write the journal holds, 4 and 5 waiting for space.</summary>
    private async Task<(WorkQueue<int> Queue, Task Batch, ConcurrentQueue<(Exception Error, int Item)> Reported)> BatchHeldInWrite(
        Akka.Actor.ActorSystem system, string name, CancellationToken cancellationToken)
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 3, ConcurrencyLimit = 1, WorkerBatch = 1, Durability = WriteGatedJournal.Durability },
            system: system, name: DurableStore.UniqueName(name));
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heldWrite = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);

        IEnumerable<int> Items()
        {
            for (var i = 0; i < 6; i++)
            {
                if (i == 3)
                {
                    heldWrite.TrySetResult(WriteGatedJournal.HoldNextWrite()); // the first chunk is written: the next write is held for good
                }

                yield return i;
            }
        }

        var batch = queue.BatchProcessAsync(Items(), (_, ct) =>
        {
            running.TrySetResult();
            return Task.Delay(Timeout.Infinite, ct);
        }, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        }, cancellationToken: cancellationToken);
        await (await heldWrite.Task.WaitAsync(Bound)).WaitAsync(Bound); // the close's own arrival (see WriteGatedJournal.HoldNextWrite)
        await running.Task.WaitAsync(Bound);
        return (queue, batch, reported);
    }
}
