using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 183): a queue disposed once every item of its batch has finished, but before the batch has sent its
/// join (the disposal is made in the sequence's last <c>MoveNext</c>, after its last chunk was admitted and once the
/// router has counted every item processed), so the facade refuses the join at once as disposed.
/// </summary>
public sealed class BatchDisposedBeforeJoinRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// Capacity 2, one worker, items 0 and 1 (one chunk); the queue is disposed after both were processed and before the
    /// join. Expected, as for a disposal that comes after the join: the batch reports what its items did — it completes,
    /// or with item 0 failed (no error handler) throws that failure alone — once the disposal has stopped the queue.
    /// Failed before: the refused join was thrown ("Assert.Null() Failure: Value is not null, Actual:
    /// ObjectDisposedException"; with item 0 failed, an <see cref="AggregateException"/> holding the
    /// <see cref="ObjectDisposedException"/> first).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_disposal_after_every_item_finished_and_before_the_join_does_not_fail_the_batch(bool firstFails)
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: $"h183-disposed-before-join-{firstFails}");
        var failure = new InvalidOperationException("item 0 failed");
        var processed = new ConcurrentQueue<int>();
        var sequence = new ScriptedSequence(2, index =>
        {
            if (index == 2)
            {
                // The end: chunk [0, 1] was admitted before this MoveNext; the batch sends its join only after it returns.
                Poll.UntilAsync(() => queue.Metrics.Processed == 2, Bound, "the router counted both items processed").GetAwaiter().GetResult();
                queue.Dispose();
            }
        });

        var batch = queue.BatchProcessAsync(sequence, item =>
        {
            if (item == 0 && firstFails)
            {
                throw failure;
            }

            processed.Enqueue(item);
            return Task.CompletedTask;
        });

        await BatchDisposalOutcome.AssertItemsOnlyAsync(queue, batch, firstFails ? failure : null, processed, firstFails ? [1] : [0, 1], Bound);
        Assert.Equal(1, sequence.Disposed);
    }

    /// <summary>
    /// The same disposal, made in the sequence's last <c>MoveNext</c> while item 1 is still held by its worker (stop
    /// timeout 1 s, so the disposal's grace period cancels it: it goes back to the queue and is discarded). Expected: the
    /// batch still throws the disposal (<see cref="ObjectDisposedException"/>, with an error handler that gets item 1 as
    /// discarded): not every item finished, and the batch must not claim they did. Passes before and after (pins that
    /// the success of the test above is told from the items, not from the moment).
    /// </summary>
    [Fact]
    public async Task A_disposal_before_the_join_with_an_item_unfinished_still_fails_the_batch()
    {
        await using var system = new DisposableSystem(Akka.Actor.ActorSystem.Create("h183-unfinished",
            Akka.Configuration.ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig)));
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: system.System, name: "h183-unfinished");
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var sequence = new ScriptedSequence(2, index =>
        {
            if (index == 2)
            {
                Assert.True(holding.Task.Wait(Bound), "item 1 never ran");
                queue.Dispose();
            }
        });

        var batch = queue.BatchProcessAsync(sequence, async (item, token) =>
        {
            if (item == 1)
            {
                holding.TrySetResult();
                await Task.Delay(Timeout.Infinite, token);
            }
        }, 1, (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        });

        var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
        Assert.IsType<ObjectDisposedException>(error);
        var (reason, item) = Assert.Single(reported);
        Assert.Equal(1, item);
        Assert.IsType<ObjectDisposedException>(reason);
    }

    /// <summary>An actor system of a test's own, terminated when disposed.</summary>
    private sealed class DisposableSystem(Akka.Actor.ActorSystem system) : IAsyncDisposable
    {
        public Akka.Actor.ActorSystem System { get; } = system;

        public async ValueTask DisposeAsync() => await System.Terminate();
    }
}
