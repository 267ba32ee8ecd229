using ActorQueue.Runtime;
using ActorQueue.Telemetry;

namespace ActorQueue.Cluster;

// A producer's withdrawals (DistributedWorkQueue.TryWithdrawAsync): the item is marked in the book, so every router
// incarnation the producer follows hears of it (in the announcement), and the followed router answers.
internal sealed partial class DistributedProducerActor
{
    /// <summary>
    /// A caller withdraws an item: the followed router (or, with none, the next one, in the announcement it asks for) is
    /// told, and the caller answered when it answers. An item with a result already is answered at once: not withdrawn
    /// (the facade tells a withdrawn one by its result).
    /// </summary>
    private void HandleWithdrawRequest(WithdrawRequest request)
    {
        if (!_book.Outstanding.TryGetValue(request.ItemId, out var put))
        {
            request.Answer.TrySetResult(false);
            return;
        }

        put.Withdrawing = true;
        (put.WithdrawWaiters ??= []).Add(request.Answer);
        Send(new WithdrawItem(_book.Router.Epoch, put.ItemId));
    }

    /// <summary>
    /// A caller cancelled its put before the queue accepted it (<see cref="CancelPut"/>): the put is withdrawn like an
    /// accepted item — at the followed router, which drops it if it still waits for space (<see cref="HandleWithdrawAnswer"/>
    /// then fails the put as cancelled), or in the announcement to the next, which names it even if no router may have
    /// accepted it (<see cref="HandleRecover"/>): accepted and withdrawn in one message, it never reaches a worker. One
    /// accepted or refused meanwhile is left alone: the caller hears that.
    /// </summary>
    private void HandleCancelPut(CancelPut cancel)
    {
        var put = cancel.Put;
        if (put.Accepted.Task.IsCompleted || put.Withdrawing || !_book.Outstanding.TryGetValue(put.ItemId, out var known) || !ReferenceEquals(known, put))
        {
            return;
        }

        put.Withdrawing = true;
        Send(new WithdrawItem(_book.Router.Epoch, put.ItemId));
    }

    /// <summary>
    /// The router's answer. Only the followed router's counts: one a router this producer left sent late may be about an
    /// item already announced to the next (it would withdraw it there anyway: the announcement names it). Withdrawn: the
    /// item ends so, and is counted; not withdrawn: a worker runs it (and the router withdraws it if that worker is lost),
    /// or its result is on its way.
    /// </summary>
    private void HandleWithdrawAnswer(WithdrawAnswer answer)
    {
        if (!Sender.Equals(_book.Router.Current) || !_book.Outstanding.TryGetValue(answer.ItemId, out var put))
        {
            return;
        }

        if (!answer.Withdrawn)
        {
            put.AnswerWithdrawals(false);
            return;
        }

        Withdrawn(put, answer);
    }

    /// <summary>
    /// A put ends withdrawn: counted, its result says so, and its callers waiting for the withdrawal are answered. One not
    /// accepted yet (its caller cancelled the put while it waited for space) was not taken: its acceptance is cancelled.
    /// </summary>
    private void Withdrawn(PutItem put, WithdrawAnswer answer)
    {
        _book.Outstanding.Remove(answer.ItemId);
        put.Accepted.TrySetCanceled();
        Interlocked.Increment(ref _counts.Withdrawn);
        _listenerFailures.Add(ActorQueueTelemetry.QueueWithdrawnCounter, 1, _metricTag);
        put.Done.TrySetResult(new ItemDone(answer.ItemId, answer.Deliveries, false, null,
            answer.Deliveries == 0 ? "withdrawn by its producer before a worker took it" : "withdrawn by its producer; not handed to a worker again after its worker was lost",
            answer.Node)
        {
            Withdrawn = true,
        });
        put.AnswerWithdrawals(true);
        PublishOutstanding();
    }
}

/// <summary>A put's withdrawal: its mark and the callers waiting for the router's answer.</summary>
internal sealed partial class PutItem
{
    /// <summary>Whether its caller withdrew it (<see cref="WithdrawRequest"/>); the producer's only, told to every router it follows.</summary>
    public bool Withdrawing { get; set; }

    /// <summary>Callers waiting for the followed router's answer to their withdrawal; the producer's only.</summary>
    public List<TaskCompletionSource<bool>>? WithdrawWaiters { get; set; }

    /// <summary>Answers every caller waiting for a withdrawal of this item.</summary>
    public void AnswerWithdrawals(bool withdrawn) => AnswerWithdrawals(waiter => waiter.TrySetResult(withdrawn));

    /// <summary>Fails every caller waiting for a withdrawal of this item.</summary>
    public void AnswerWithdrawals(Exception failure) => AnswerWithdrawals(waiter => waiter.TrySetException(failure));

    private void AnswerWithdrawals(Action<TaskCompletionSource<bool>> answer)
    {
        foreach (var waiter in WithdrawWaiters ?? [])
        {
            answer(waiter);
        }

        WithdrawWaiters = null;
    }
}

/// <summary>A facade's caller cancelled a put it still waits on (<see cref="DistributedWorkQueue{TItem, TResult}.SubmitAsync"/>): the producer withdraws it.</summary>
/// <param name="Producer">The producer the put went to (the cancellation callback tells it this).</param>
/// <param name="Put">The put.</param>
internal sealed record CancelPut(Akka.Actor.IActorRef Producer, PutItem Put);

/// <summary>A facade withdraws an accepted item; answered <c>true</c> when the router withdrew it.</summary>
internal sealed class WithdrawRequest(long itemId) : IUndeliverableRequest
{
    public long ItemId { get; } = itemId;

    public TaskCompletionSource<bool> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Answer.TrySetException(new ObjectDisposedException(nameof(DistributedWorkQueue<object, object>), "The distributed queue handle has been disposed."));
}
