using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using ActorQueue.Tests.Queues;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Two defects a documentation review found. <see cref="OwnedActor{TStop}.Stop"/>: a second caller that came after the
/// first had claimed the disposal but before it had written its stop message got <c>null</c>, so its
/// <c>DisposeAsync</c> completed at once, before the facade was disposed. <c>BatchProcessAsync</c> without an error
/// handler: the item failures collected before a cancellation, or before the queue failed under the batch, were
/// neither thrown nor logged.
/// </summary>
public sealed class DisposeRaceBatchReviewTests() : ActorQueueTestKit(ShortStopTimeout)
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The first <see cref="OwnedActor{TStop}.Stop"/> is held inside the stop-message factory (on its own thread) until
    /// the second, on another thread, has returned: whatever the order of the claim and the message inside Stop, the
    /// second lands while the first is between them. It must get the message the actor receives, and only one is sent.
    /// </summary>
    [Fact]
    public async Task A_second_Stop_while_the_first_is_making_its_message_gets_the_message_that_is_sent()
    {
        var actor = CreateTestProbe();
        using var firstInFactory = new ManualResetEventSlim();
        using var secondReturned = new ManualResetEventSlim();
        var made = 0;
        var owned = new OwnedActor<StopMessage>(actor.Ref, () =>
        {
            var message = new StopMessage(Interlocked.Increment(ref made));
            if (message.Number == 1)
            {
                firstInFactory.Set();
                _ = secondReturned.Wait(Bound); // its result is asserted below, as secondReturned.IsSet
            }

            return message;
        });
        StopMessage? first = null;
        StopMessage? second = null;
        var firstThread = new Thread(() => first = owned.Stop()) { IsBackground = true };
        var secondThread = new Thread(() =>
        {
            if (firstInFactory.Wait(Bound))
            {
                second = owned.Stop();
                secondReturned.Set();
            }
        }) { IsBackground = true };

        firstThread.Start();
        secondThread.Start();
        Assert.True(firstThread.Join(Bound) && secondThread.Join(Bound), "a Stop did not return");

        Assert.True(secondReturned.IsSet, "the second Stop never ran: the first never reached the factory");
        Assert.True(second is not null, "the second Stop, racing the first, got null: its DisposeAsync would complete before the stop");
        Assert.Same(first, second);
        Assert.True(owned.IsDisposed);

        // Exactly the message both got was sent, once: a marker sent after both returned comes right after it.
        actor.Ref.Tell("marker", ActorRefs.NoSender);
        Assert.Same(second, await actor.ExpectMsgAsync<StopMessage>(Bound));
        await actor.ExpectMsgAsync("marker", Bound);
    }

    /// <summary>A disposal claimed otherwise (<see cref="OwnedActor{TStop}.TryClaim"/>) sends no message of Stop's: Stop gets none, and the actor gets none.</summary>
    [Fact]
    public async Task Stop_after_a_disposal_claimed_otherwise_returns_null_and_sends_nothing()
    {
        var actor = CreateTestProbe();
        var owned = new OwnedActor<StopMessage>(actor.Ref, () => new StopMessage(0));

        Assert.True(owned.TryClaim());
        Assert.False(owned.TryClaim());

        Assert.Null(owned.Stop());
        Assert.True(owned.IsDisposed);
        actor.Ref.Tell("marker", ActorRefs.NoSender);
        await actor.ExpectMsgAsync("marker", Bound);
    }

    /// <summary>After a Stop, every later Stop gets its message and TryClaim is refused; the actor gets the message once.</summary>
    [Fact]
    public async Task Later_Stops_get_the_first_ones_message_and_TryClaim_is_refused()
    {
        var actor = CreateTestProbe();
        var made = 0;
        var owned = new OwnedActor<StopMessage>(actor.Ref, () => new StopMessage(Interlocked.Increment(ref made)));

        var first = owned.Stop();

        Assert.NotNull(first);
        Assert.Same(first, owned.Stop());
        Assert.False(owned.TryClaim());
        Assert.Equal(1, Volatile.Read(ref made));
        actor.Ref.Tell("marker", ActorRefs.NoSender);
        Assert.Same(first, await actor.ExpectMsgAsync<StopMessage>(Bound));
        await actor.ExpectMsgAsync("marker", Bound);
    }

    /// <summary>
    /// A cancelled batch without an error handler: the three items that failed before the cancellation (one worker, in
    /// order, so they have been reported when the fourth starts) reach the caller in the cancellation's exception, after
    /// what the cancellation interrupted when it interrupted a call (round 44: the batch's join, refused by the stop the
    /// cancellation made; a cancellation seen between calls has no cause of its own).
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_without_a_handler_throws_the_failures_collected_before_the_cancellation()
    {
        var logs = new CapturingLoggerProvider();
        await using var queue = new WorkQueue<int>(10, null, 1, logs.CreateLogger("batch"), Sys, "cancelled-batch");
        using var cancel = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 6), FailThreeThenWait(started), cancellationToken: cancel.Token);
        await started.Task.WaitAsync(Bound);
        cancel.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        Assert.Equal(cancel.Token, error.CancellationToken);
        Assert.True(error.InnerException is AggregateException,
            $"the cancellation's exception does not carry the 3 failures collected before it (inner: {error.InnerException?.GetType().Name}); logged: {Logged(logs)}");
        var failures = (AggregateException)error.InnerException!;
        Assert.Equal(["item 0", "item 1", "item 2"], failures.InnerExceptions.TakeLast(3).Select(e => e.Message));
        Assert.True(failures.InnerExceptions.Count == 3 || failures.InnerExceptions is [QueueStateException, _, _, _],
                    $"only the interrupted call's cause comes before the failures: {string.Join(" | ", failures.InnerExceptions.Select(e => e.Message))}");
        Assert.Contains("3 items of the batch failed", error.Message, StringComparison.Ordinal);
        Assert.Contains("DrainAsync hands them back", error.Message, StringComparison.Ordinal); // the cancellation's own message is kept
    }

    /// <summary>
    /// A batch without an error handler whose queue is disposed under it: the three items that failed before reach the
    /// caller, after the exception that ended the batch, as a sequence's failure does.
    /// </summary>
    [Fact]
    public async Task A_batch_without_a_handler_whose_queue_is_disposed_throws_the_failures_collected_before()
    {
        var logs = new CapturingLoggerProvider();
        var queue = new WorkQueue<int>(10, null, 1, logs.CreateLogger("batch"), Sys, "disposed-batch");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 6), FailThreeThenWait(started));
        await started.Task.WaitAsync(Bound);
        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => batch.WaitAsync(Bound));
        Assert.True(error is AggregateException,
            $"the batch threw {error.GetType().Name} ({error.Message}) without the 3 failures collected before; logged: {Logged(logs)}");
        var all = (AggregateException)error;
        Assert.IsNotType<ItemFailedException>(all.InnerExceptions[0]); // the exception that ended the batch comes first
        Assert.Equal(["item 0", "item 1", "item 2"], all.InnerExceptions.OfType<ItemFailedException>().Select(e => e.Message));
    }

    /// <summary>
    /// A batch without an error handler whose queue is disposed while a chunk waits for space: of the 8 items read, the
    /// 5 queued are discarded (each reported to the batch's collector) and the 3 the disposal refused were in no queue.
    /// Every one of the 8 reaches the caller in the batch's exception, or, reported after the batch returned, the
    /// error log: none is dropped.
    /// </summary>
    [Fact]
    public async Task A_batch_without_a_handler_whose_queue_is_disposed_accounts_for_every_item_read()
    {
        var logs = new CapturingLoggerProvider();
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, logs.CreateLogger("batch"), Sys, "refused-batch");
        var sequence = new CountedSequence();

        var batch = queue.BatchProcessAsync(sequence.Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1);
        await Poll.UntilAsync(() => queue.IsFull && sequence.Read == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {sequence.Read}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");
        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => batch.WaitAsync(Bound));
        var thrown = error is AggregateException all ? all.InnerExceptions.Count - 1 : 0; // the first is the one that ended the batch
        var loggedLater = logs.Events.Count(e => e.Level == LogLevel.Error && e.Message.Contains("failed after the batch", StringComparison.Ordinal));
        Assert.True(thrown + loggedLater == 8,
            $"of the 8 items read, {thrown} failures were thrown ({error.GetType().Name}: {error.Message}) and {loggedLater} logged; logged: {Logged(logs)}");
    }

    /// <summary>Items 0 to 2 fail at once; the next one signals <paramref name="started"/> and waits for its token.</summary>
    private static Func<int, CancellationToken, Task> FailThreeThenWait(TaskCompletionSource started) => async (item, ct) =>
    {
        if (item < 3)
        {
            throw new ItemFailedException($"item {item}");
        }

        started.TrySetResult();
        await Task.Delay(Timeout.Infinite, ct);
    };

    private static string Logged(CapturingLoggerProvider logs) => string.Join(" | ", logs.Events.Select(e => $"{e.Level}: {e.Message}"));

    /// <summary>A worker's failure, told apart from the library's exceptions.</summary>
    private sealed class ItemFailedException(string message) : Exception(message);

    /// <summary>A stop message; <see cref="Number"/> tells which call of the factory made it.</summary>
    private sealed class StopMessage(int number)
    {
        public int Number { get; } = number;
    }
}
