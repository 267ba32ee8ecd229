using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>How the facade hands its calls to its router actor: a message each, answered through its completion, withdrawn on cancellation.</summary>
public sealed partial class BoundedQueue<T>
{
    /// <summary>Awaits a stop, telling the router its grace period is over if <paramref name="cancellationToken"/> fires first.</summary>
    private async Task EndGraceOnCancel(Task stopped, CancellationToken cancellationToken)
    {
        await using (cancellationToken.UnsafeRegister(static router => ((IActorRef)router!).Tell(StopTimedOut.Instance, ActorRefs.NoSender), Router)
                         .ConfigureAwait(false))
        {
            await stopped.ConfigureAwait(false);
        }
    }

    private Task<bool> Route(FacadePut<T> put, CancellationToken cancellationToken)
    {
        _inbox.Routed();
        Router.Tell(put, ActorRefs.NoSender);
        return Explained(cancellationToken.CanBeCanceled ? AwaitCancellable(put.Completion, put.Cancel, cancellationToken) : put.Completion.Task);
    }

    /// <summary>
    /// <paramref name="answer"/>, except that a durable queue whose recovery failed tells the recovery's error
    /// (<see cref="QueueStorageException"/>) where a call reached its router after it stopped: Akka stops a persistent
    /// actor whose replay fails, and what is sent to it then is answered by dead letters as if the queue had been
    /// disposed, which nobody did (Review/LastRoundFixesReviewTests). Once the queue is disposed, "disposed" stands.
    /// </summary>
    private Task<TResult> Explained<TResult>(Task<TResult> answer) =>
        _recovered is { } recovered && !answer.IsCompletedSuccessfully ? ExplainedAsync(answer, recovered) : answer;

    private async Task<TResult> ExplainedAsync<TResult>(Task<TResult> answer, Task recovered)
    {
        try
        {
            return await answer.ConfigureAwait(false);
        }
        catch (ObjectDisposedException) when (recovered.IsFaulted && !_router.IsDisposed)
        {
            await recovered.ConfigureAwait(false); // throws its error
            throw;
        }
    }

    /// <summary>
    /// A durable queue's start: sent at once, in order with the calls made after it (the router keeps what comes while it
    /// recovers, and answers a start it kept with a <see cref="QueueStorageException"/> should the recovery fail or be
    /// given up). Sent only once recovered, as before, a stop or a put made right after a start that was not awaited
    /// reached the router first: the stop was undone by the start, the put refused on an idle queue.
    /// </summary>
    private Task StartDurableAsync(Task recovered, CancellationToken cancellationToken) =>
        recovered.IsFaulted ? recovered : SendAsync(new StartQueue(), cancellationToken);

    private Task SendAsync(QueueCommand<bool> command, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        Router.Tell(command, ActorRefs.NoSender);
        return Explained(cancellationToken.CanBeCanceled ? command.Completion.Task.WaitAsync(cancellationToken) : command.Completion.Task);
    }

    private static async Task<TResult> AwaitCancellable<TResult>(TaskCompletionSource<TResult> completion, Action<CancellationToken> cancel,
                                                                 CancellationToken cancellationToken)
    {
        await using var registration = cancellationToken.UnsafeRegister(static (state, token) => ((Action<CancellationToken>)state!)(token), cancel)
            .ConfigureAwait(false);
        return await completion.Task.ConfigureAwait(false);
    }

    private void ThrowIfDisposed() => _router.ThrowIfDisposed(this);
}
