using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 183), adversarial review: a queue disposed while its batch's join waits at the router and an item
/// is still in hand, so the item is cancelled by the disposal's grace period and discarded.
/// </summary>
public sealed class BatchJoinDisposedRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// Capacity 2, one worker, no error handler, stop timeout 1 s; item 1 runs, item 2 disposes the queue once the batch's
    /// join waits at the router, then waits for its token (the disposal's grace period cancels it; it is discarded).
    /// Expected, as the docs say of a queue disposed under the batch: the batch throws only once the disposal has stopped
    /// the queue, the disposal (<see cref="ObjectDisposedException"/>) first, and item 2's discard among its failures.
    /// Failed before: the join's refusal by the disposal's stop ("stopped with 1 item pending") went out at once
    /// ("Assert.IsType() Failure: Expected ObjectDisposedException, Actual QueueStateException"), before the disposal
    /// had reported the discarded item to the batch.
    /// </summary>
    [Fact]
    public async Task A_disposal_while_the_join_waits_with_an_item_in_hand_throws_the_disposal_with_the_discarded_item()
    {
        var system = ActorSystem.Create("h183-join-disposed", ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueueRuntime.DefaultConfig));
        try
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: system, name: "h183-join-disposed");
            var batch = queue.BatchProcessAsync([1, 2], async (item, token) =>
            {
                if (item == 2)
                {
                    await Poll.UntilAsync(() => RouterProbe.JoinsWaiting(queue) == 1, Bound, "the batch's join waits at the router");
                    queue.Dispose();
                    await Task.Delay(Timeout.Infinite, token);
                }
            });

            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
            var stopped = queue.Queue.DisposeAsync().IsCompleted;
            var all = Assert.IsType<AggregateException>(error).InnerExceptions;
            Assert.True(all.Count == 2 && all[0] is ObjectDisposedException && all[1] is ObjectDisposedException, $"{error}");
            Assert.True(stopped, "the batch completed before its queue's disposal had stopped it");
        }
        finally
        {
            await system.Terminate();
        }
    }
}
