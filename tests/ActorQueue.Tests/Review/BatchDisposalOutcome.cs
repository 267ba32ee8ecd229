using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>What a batch whose queue was disposed once every item had finished must report, for the tests that dispose it at different points.</summary>
internal static class BatchDisposalOutcome
{
    /// <summary>
    /// Asserts that <paramref name="batch"/> reports what its items did and nothing of the disposal: it completes, or,
    /// when <paramref name="failure"/> was thrown by an item (no error handler), throws it alone in an
    /// <see cref="AggregateException"/>; <paramref name="processed"/> holds <paramref name="expected"/>; and the batch
    /// completed only once the disposal had stopped the queue.
    /// </summary>
    public static async Task AssertItemsOnlyAsync(WorkQueue<int> queue, Task batch, Exception? failure, ConcurrentQueue<int> processed, int[] expected, TimeSpan bound)
    {
        var error = await Record.ExceptionAsync(() => batch.WaitAsync(bound));
        var stopped = queue.Queue.DisposeAsync().IsCompleted; // a later disposal completes with the first, once the queue has stopped
        await queue.DisposeAsync().AsTask().WaitAsync(bound);

        if (failure is not null)
        {
            var failures = Assert.IsType<AggregateException>(error);
            Assert.Same(failure, Assert.Single(failures.InnerExceptions));
        }
        else
        {
            Assert.Null(error);
        }

        Assert.Equal(expected, processed.Order());
        Assert.True(stopped, "the batch completed before its queue's disposal had stopped it");
    }
}
