using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 second reading (helper 187): a batch waiting at the worker gate for a worker start being sent
/// (held at <see cref="BoundedQueue{T}.WorkerStartSending"/>) and cancelled there.
/// </summary>
public sealed class BatchGateCancelRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch with a token waits for a <c>ProcessAsync</c> being sent, and its token is cancelled while the start is
    /// still held. Expected: the batch ends with <see cref="OperationCanceledException"/> while the start is still held
    /// (the wait does not outlive the cancellation), its sequence never read; the start then completes, and the gate is
    /// free: a later batch runs every item with its own worker. Failed before: the wait ignored the token — the batch
    /// was still waiting when the start's sender gave up holding ("the cancelled batch was still waiting at the gate").
    /// </summary>
    [Fact]
    public async Task A_batch_cancelled_while_waiting_at_the_gate_ends_at_once_and_leaves_the_gate_free()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h187-gate-cancel");
        using var cts = new CancellationTokenSource();
        var sequence = new ScriptedSequence(4);
        Task? batch = null;
        var endedWhileHeld = false;
        queue.Queue.WorkerStartSending = () =>
        {
            queue.Queue.WorkerStartSending = null;
            batch = queue.BatchProcessAsync(sequence, (_, _) => Task.CompletedTask, cancellationToken: cts.Token);
            cts.Cancel();
            // Holds the start (this is its sender's thread) until the batch has ended, or gives up at the hang guard.
            endedWhileHeld = ((IAsyncResult)batch).AsyncWaitHandle.WaitOne(Bound);
        };

        await queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound);
        Assert.True(endedWhileHeld, "the cancelled batch was still waiting at the gate");
        Assert.NotNull(batch);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        Assert.Equal(0, sequence.Disposed); // never enumerated: nothing of the batch was read, so nothing to report

        await queue.StopAsync().WaitAsync(Bound);
        var handled = new ConcurrentQueue<int>();
        await queue.BatchProcessAsync(Enumerable.Range(0, 3), item =>
        {
            handled.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound);
        Assert.Equal([0, 1, 2], handled.Order());
    }
}
