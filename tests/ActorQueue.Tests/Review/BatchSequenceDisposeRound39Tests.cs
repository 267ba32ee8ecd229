using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 (helper 183): a batch's sequence whose enumerator's <c>Dispose</c> throws while the batch already ends with
/// another exception (cancelled, a chunk refused by a stop, its <c>MoveNext</c> failed). Documented outcome: nothing is
/// dropped — the exception that ended the batch keeps its place (first, or, for a cancellation, the
/// <see cref="OperationCanceledException"/> thrown), and the <c>Dispose</c> exception follows it in the same
/// <see cref="AggregateException"/> (for a cancellation, in its inner <see cref="AggregateException"/>).
/// </summary>
public sealed class BatchSequenceDisposeRound39Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// Capacity 2, one worker, an error handler; the token is cancelled as the sequence gives item 2 (chunk [0, 1] is in),
    /// and the enumerator's <c>Dispose</c> throws. Expected: an <see cref="OperationCanceledException"/> (the batch was
    /// cancelled) whose inner <see cref="AggregateException"/> holds the <c>Dispose</c> exception; item 2 (read, not
    /// queued) goes to the handler with the cancellation as its reason; the enumerator was disposed once. Failed
    /// before: the <c>Dispose</c> exception replaced the cancellation ("Assert.IsType() Failure: Expected
    /// OperationCanceledException, Actual InvalidDataException"), and item 2 was reported with it as its reason.
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_whose_sequence_fails_to_dispose_throws_the_cancellation_with_the_dispose_inside()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h183-cancel-dispose");
        using var cancel = new CancellationTokenSource();
        var disposeFault = new InvalidDataException("no dispose");
        var sequence = new ScriptedSequence(10, index =>
        {
            if (index == 2)
            {
                cancel.Cancel();
            }
        }, disposeFault: disposeFault);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(sequence, (_, _) => Task.CompletedTask, 1, (exception, item) =>
        {
            reported.Enqueue((exception, item));
            return Task.CompletedTask;
        }, cancel.Token).WaitAsync(Bound));

        var cancelled = Assert.IsType<OperationCanceledException>(error);
        var inner = Assert.IsType<AggregateException>(cancelled.InnerException);
        Assert.Same(disposeFault, Assert.Single(inner.InnerExceptions));
        var (reason, item) = Assert.Single(reported);
        Assert.Equal(2, item);
        Assert.IsType<OperationCanceledException>(reason);
        Assert.Equal(1, sequence.Disposed);
    }

    /// <summary>
    /// Capacity 2, one worker, no error handler; a stop is made from the sequence (so the router has it before the
    /// chunk that follows) either mid-way, as it gives item 2 (chunk [2, 3] refused; the enumerator is disposed as the
    /// refusal goes out), or at its end, once it gave item 2 (its <c>Dispose</c> throws first, then chunk [2] is
    /// refused). Expected either way: an <see cref="AggregateException"/> whose first exception is the stop's refusal
    /// (<see cref="QueueStateException"/>), then the <c>Dispose</c> exception, then a failure for each refused item;
    /// the enumerator was disposed once. Failed before: mid-way the <c>Dispose</c> exception replaced the refusal (the
    /// first was an InvalidDataException, and the refused items were reported with it); at the end it was dropped
    /// ("Assert.Same() Failure" on the second exception, a QueueStateException).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_chunk_refused_by_a_stop_and_a_failing_Dispose_are_both_thrown_the_refusal_first(bool atEnd)
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: $"h183-stop-dispose-{atEnd}");
        var disposeFault = new InvalidDataException("no dispose");
        var (count, stopAt) = atEnd ? (3, 3) : (4, 2);
        var sequence = new ScriptedSequence(count, index =>
        {
            if (index == stopAt)
            {
                _ = queue.StopAsync();
            }
        }, disposeFault: disposeFault);

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(sequence, _ => Task.CompletedTask).WaitAsync(Bound));

        var all = Assert.IsType<AggregateException>(error).InnerExceptions;
        Assert.IsType<QueueStateException>(all[0]);
        Assert.Same(disposeFault, all[1]);
        Assert.Equal(atEnd ? 1 : 2, all.Count - 2);
        Assert.All(all.Skip(2), failure => Assert.IsType<QueueStateException>(failure));
        Assert.Equal(1, sequence.Disposed);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    /// <summary>
    /// Capacity 2, one worker; the sequence gives items 0 to 2, its <c>MoveNext</c> then throws, and so does its
    /// enumerator's <c>Dispose</c>. Expected: the items it gave are processed, the enumerator is disposed (as
    /// <c>foreach</c> does after a failing <c>MoveNext</c>), and the batch throws an <see cref="AggregateException"/>
    /// holding the <c>MoveNext</c> exception, then the <c>Dispose</c> one. Failed before: the enumerator was never
    /// disposed ("Assert.Equal() Failure: Expected 1, Actual 0") and only the <c>MoveNext</c> exception was thrown.
    /// </summary>
    [Fact]
    public async Task A_sequence_whose_MoveNext_and_Dispose_both_fail_is_disposed_and_both_are_thrown()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h183-move-dispose");
        var (moveFault, disposeFault) = (new InvalidDataException("no next"), new InvalidDataException("no dispose"));
        var sequence = new ScriptedSequence(10, failAt: 3, moveFault: moveFault, disposeFault: disposeFault);
        var processed = new ConcurrentQueue<int>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(sequence, item =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound));

        Assert.Equal(1, sequence.Disposed);
        var all = Assert.IsType<AggregateException>(error).InnerExceptions;
        Assert.Equal<Exception>([moveFault, disposeFault], all);
        Assert.Equal([0, 1, 2], processed.Order());
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }
}
