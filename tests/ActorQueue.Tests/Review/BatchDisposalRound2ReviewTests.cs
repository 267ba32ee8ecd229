using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second review (helper 176) of a batch against its queue's disposal (<c>WorkQueue.Batch.cs</c>, after 7dbdb54 and
/// 85a964c): a batch "disposed under it" throws "only once the queue has stopped", whichever of its calls the disposal
/// refuses — a chunk's put (85a964c), or its join once every chunk is in.
/// </summary>
public sealed class BatchDisposalRound2ReviewTests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch of exactly one chunk (capacity 2, items 1 and 2, one worker holding item 1 until the batch's task
    /// completes or its token is cancelled, stop timeout 2 s) whose queue is disposed after its last chunk is in, as the
    /// sequence ends (the disposal is made in the sequence's last <c>MoveNext</c>): no chunk is refused, the facade refuses
    /// the batch's join at once (disposed). Expected, as for a refused chunk: the batch throws only once the queue has
    /// stopped — the worker's token (the disposal's grace period ending) comes before the batch's end; item 2 is
    /// reported once (discarded), item 1 once (cancelled). Failed before: the join's <see cref="ObjectDisposedException"/>
    /// went straight out of the batch, which threw while its worker still ran ("Expected: the token (item 1)",
    /// "Actual: the batch (item 1)").
    /// </summary>
    [Fact]
    public async Task A_batch_whose_join_its_disposal_refuses_throws_only_once_the_queue_has_stopped()
    {
        var system = ActorSystem.Create("h176-join-refused", Akka.Configuration.ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 2s")
            .WithFallback(ActorQueueRuntime.DefaultConfig));
        try
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: system, name: "h176-join-refused");
            var reported = new ConcurrentQueue<(Exception Error, int Item)>();
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var (batchTask, firstEnded) = (new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously),
                new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
            Task? disposal = null;

            IEnumerable<int> Items()
            {
                yield return 1;
                yield return 2; // the chunk [1, 2] is put as this one is read

                // The sequence's end: the chunk is in and item 1 in hand; the queue is disposed before the batch joins.
                Assert.True(running.Task.Wait(Bound), "item 1 was not handed out");
                disposal = queue.DisposeAsync().AsTask();
            }

            var batch = queue.BatchProcessAsync(Items(), async (item, token) =>
            {
                running.TrySetResult();
                var ended = await Task.WhenAny((await batchTask.Task).ContinueWith(_ => "the batch", TaskScheduler.Default),
                    Task.Delay(Timeout.Infinite, token).ContinueWith(_ => "the token", TaskScheduler.Default));
                firstEnded.TrySetResult($"{await ended} (item {item})");
                token.ThrowIfCancellationRequested();
            }, 1, (error, item) =>
            {
                reported.Enqueue((error, item));
                return Task.CompletedTask;
            });
            batchTask.SetResult(batch);

            Assert.Equal("the token (item 1)", await firstEnded.Task.WaitAsync(Bound));
            await Assert.ThrowsAsync<ObjectDisposedException>(() => batch.WaitAsync(Bound));
            await disposal!.WaitAsync(Bound);
            Assert.Equal([1, 2], reported.Select(r => r.Item).Order());
        }
        finally
        {
            await system.Terminate();
        }
    }
}
