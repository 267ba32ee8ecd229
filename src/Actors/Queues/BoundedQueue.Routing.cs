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
        return cancellationToken.CanBeCanceled ? AwaitCancellable(put.Completion, put.Cancel, cancellationToken) : put.Completion.Task;
    }

    private async Task StartDurableAsync(Task recovered, CancellationToken cancellationToken)
    {
        await recovered.WaitAsync(cancellationToken).ConfigureAwait(false);
        await SendAsync(new StartQueue(), cancellationToken).ConfigureAwait(false);
    }

    private Task SendAsync(QueueCommand<bool> command, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        Router.Tell(command, ActorRefs.NoSender);
        return cancellationToken.CanBeCanceled ? command.Completion.Task.WaitAsync(cancellationToken) : command.Completion.Task;
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
