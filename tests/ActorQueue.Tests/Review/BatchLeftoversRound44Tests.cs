using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 44 (helper 204): leftovers of <c>BatchProcessAsync</c>'s cancellation — what a cancelled batch without an
/// error handler throws, and what a batch cancelled while waiting at the <see cref="WorkerGate"/> leaves there.
/// </summary>
public sealed class BatchLeftoversRound44Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(15));

    /// <summary>
    /// A batch without an error handler (capacity 1, one worker): item 0 fails, item 1 runs until its token is
    /// cancelled, and the batch's token is cancelled as the sequence gives item 2, so the stop refuses that item's put. Expected: <see cref="OperationCanceledException"/> with the batch's token;
    /// its inner <see cref="AggregateException"/> holds the stop's refusal (the exception the cancellation ended the
    /// batch with, first) and item 0's very exception. Failed before (in-memory and durable): the inner aggregate held
    /// item 0's failure only — the refusal, which the cancellation's exception carries when no item failed, was dropped
    /// once one had ("the cancellation's cause was dropped"). With <paramref name="sequenceFails"/> (round 45: the order
    /// had no test of its own) the sequence's enumerator also throws from its <c>Dispose</c>: its exception comes between
    /// the cause and the failures, and the enumerator is disposed once; the failures before the sequence, or the sequence
    /// before the cause, fail it (both mutants of <c>ThrowBatchOutcome</c>'s order tried, both cases failed).
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task A_cancelled_batch_without_a_handler_keeps_its_cause_with_the_failures_before_it(bool durable, bool sequenceFails)
    {
        using var store = new DurableStore(Sys);
        var config = new QueueConfig
        {
            QueueCapacity = 1, WorkerBatch = 1, ConcurrencyLimit = 1,
            Durability = durable ? store.Durability(retry: new RetryPolicy { MaxAttempts = 1 }) : null,
        };
        await using var queue = new WorkQueue<int>(config, system: Sys, name: DurableStore.UniqueName($"h204-cause-{durable}"));
        using var cts = new CancellationTokenSource();
        var boom = new InvalidOperationException("item 0 failed");
        var disposeFault = sequenceFails ? new InvalidOperationException("the sequence's Dispose failed") : null;
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runningSeen = false;
        // As the sequence is about to give item 2 (items 0 and 1 are queued), once item 1 runs (so item 0 has failed and
        // been reported): the cancellation comes between the batch's token check and item 2's put, which the stop refuses.
        var sequence = new ScriptedSequence(10, index =>
        {
            if (index == 2)
            {
                runningSeen = ((IAsyncResult)running.Task).AsyncWaitHandle.WaitOne(Bound);
                cts.Cancel();
            }
        }, disposeFault: disposeFault);

        var batch = queue.BatchProcessAsync(sequence, async (item, token) =>
        {
            if (item == 0)
            {
                throw boom;
            }

            running.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
        }, cancellationToken: cts.Token);

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        Assert.True(runningSeen, "item 1 never ran");
        Assert.Equal(cts.Token, error.CancellationToken);
        var inner = Assert.IsType<AggregateException>(error.InnerException);
        Assert.Contains(inner.InnerExceptions, failure => ReferenceEquals(failure, boom));
        Assert.True(inner.InnerExceptions[0] is not OperationCanceledException && !ReferenceEquals(inner.InnerExceptions[0], boom),
            $"the cancellation's cause was dropped: {string.Join("; ", inner.InnerExceptions.Select(e => $"{e.GetType().Name}: {e.Message}"))}");
        Assert.Equal(sequenceFails ? 3 : 2, inner.InnerExceptions.Count);
        Assert.IsType<QueueStateException>(inner.InnerExceptions[0]);
        Assert.Same(boom, inner.InnerExceptions[^1]);
        if (sequenceFails)
        {
            Assert.Same(disposeFault, inner.InnerExceptions[1]);
        }

        Assert.Equal(1, sequence.Disposed);
        Assert.Same(error.InnerException, inner);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    /// <summary>
    /// Five batches, each cancelled while it waits at the gate for a <c>ProcessAsync</c> being sent (held at
    /// <see cref="BoundedQueue{T}.WorkerStartSending"/>). Expected: each ends with <see cref="OperationCanceledException"/>
    /// and, with the start still held, the gate holds no waiter. Failed before: the waiter the first batch published
    /// stayed registered until the start was sent ("a cancelled batch left its waiter").
    /// </summary>
    [Fact]
    public async Task Batches_cancelled_while_waiting_at_the_gate_withdraw_their_waiter()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h204-gate-withdraw");
        var batches = new List<Task>();
        var allEnded = true;
        bool? waiterLeft = null;
        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            for (var i = 0; i < 5; i++)
            {
                using var cts = new CancellationTokenSource();
                var batch = queue.BatchProcessAsync(new ScriptedSequence(2), (_, _) => Task.CompletedTask, cancellationToken: cts.Token);
                batches.Add(batch);
                cts.Cancel();
                allEnded &= ((IAsyncResult)batch).AsyncWaitHandle.WaitOne(Bound);
            }

            waiterLeft = queue.Queue.WorkerGate.HasWaiter;
        };

        await queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound);
        Assert.True(allEnded, "a cancelled batch was still waiting at the gate");
        Assert.Equal(5, batches.Count);
        foreach (var batch in batches)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        }

        Assert.False(waiterLeft, "a cancelled batch left its waiter");
    }

    /// <summary>
    /// A batch cancelled at the gate while another batch waits on the same waiter (the cancelled one published it).
    /// Expected: the waiter stays for the other, which runs every item with its own worker once the start is sent; then
    /// no waiter is left. Guards the withdrawal: a withdrawal that unpublished a waiter another batch still waited on
    /// would leave that batch waiting for ever. Failed before at its last line only: the woken batch published a fresh
    /// waiter before it took the workers, and left it there ("Assert.False() Failure").
    /// </summary>
    [Fact]
    public async Task A_withdrawn_waiter_stays_for_a_batch_still_waiting_on_it()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h204-gate-survivor");
        var handled = new ConcurrentQueue<int>();
        Task? survivor = null;
        Task? cancelled = null;
        var cancelledEnded = false;
        bool? waiterKept = null;
        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            using var cts = new CancellationTokenSource();
            cancelled = queue.BatchProcessAsync(new ScriptedSequence(2), (_, _) => Task.CompletedTask, cancellationToken: cts.Token);
            survivor = queue.BatchProcessAsync(Enumerable.Range(0, 3), item =>
            {
                handled.Enqueue(item);
                return Task.CompletedTask;
            });
            cts.Cancel();
            cancelledEnded = ((IAsyncResult)cancelled).AsyncWaitHandle.WaitOne(Bound);
            waiterKept = queue.Queue.WorkerGate.HasWaiter;
        };

        await queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound);
        Assert.True(cancelledEnded, "the cancelled batch was still waiting at the gate");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled!.WaitAsync(Bound));
        Assert.True(waiterKept, "the cancelled batch withdrew the waiter another batch waited on");
        await survivor!.WaitAsync(Bound);
        Assert.Equal([0, 1, 2], handled.Order());
        Assert.False(queue.Queue.WorkerGate.HasWaiter);
    }
}
