using ActorQueue.Runtime;

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

        _book.Outstanding.Remove(answer.ItemId);
        if (put.Accepted.TrySetResult(true))
        {
            Interlocked.Increment(ref _counts.Accepted);
        }

        Interlocked.Increment(ref _counts.Withdrawn);
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
    public void AnswerWithdrawals(bool withdrawn)
    {
        foreach (var waiter in WithdrawWaiters ?? [])
        {
            waiter.TrySetResult(withdrawn);
        }

        WithdrawWaiters = null;
    }

    /// <summary>Fails every caller waiting for a withdrawal of this item.</summary>
    public void AnswerWithdrawals(Exception failure)
    {
        foreach (var waiter in WithdrawWaiters ?? [])
        {
            waiter.TrySetException(failure);
        }

        WithdrawWaiters = null;
    }
}

/// <summary>A facade withdraws an accepted item; answered <c>true</c> when the router withdrew it.</summary>
internal sealed class WithdrawRequest(long itemId) : IUndeliverableRequest
{
    public long ItemId { get; } = itemId;

    public TaskCompletionSource<bool> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Answer.TrySetException(new ObjectDisposedException(nameof(DistributedWorkQueue<object, object>), "The distributed queue handle has been disposed."));
}
