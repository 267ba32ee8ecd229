using System.Threading.Tasks.Sources;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Coordination;

/// <summary>
/// A facade caller's waiter. It is its own message and its own completion (an <see cref="IValueTaskSource{TResult}"/>
/// awaited once), so a wait costs one allocation and no temporary Ask actor. Grant, failure and cancellation race
/// from different threads; the first one wins (one <see cref="Interlocked"/> exchange) and the others do nothing.
/// Continuations run asynchronously, never on the thread of the actor that grants.
/// </summary>
/// <typeparam name="TResult">What the awaiting caller gets for a grant.</typeparam>
internal abstract class FacadeWaiter<TResult> : PermitWaiter, IValueTaskSource<TResult>, IUndeliverableRequest
{
    /// <summary>The actor that serves this waiter, told when the caller cancels.</summary>
    private readonly IActorRef _server;

    /// <summary>The awaitable state; written once, by whoever wins <see cref="_completed"/>.</summary>
    private ManualResetValueTaskSourceCore<TResult> _core = new() { RunContinuationsAsynchronously = true };

    /// <summary>1 once granted, failed or cancelled.</summary>
    private int _completed;

    /// <param name="server">The actor that serves this waiter, told when the caller cancels.</param>
    protected FacadeWaiter(IActorRef server) => _server = server;

    /// <summary>The actor that serves this waiter.</summary>
    public IActorRef Server => _server;

    /// <summary>Completes with the grant's result, a failure or cancellation; awaited exactly once, by the facade that made it.</summary>
    public ValueTask<TResult> Completion => new(this, 0);

    /// <summary>Whether it is already answered (granted, failed or cancelled).</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <inheritdoc />
    public override bool IsWithdrawn => IsCompleted;

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        if (!TryComplete())
        {
            return false;
        }

        _core.SetResult(ResultOf(grant));
        return true;
    }

    /// <inheritdoc />
    public override void Fail(Exception error)
    {
        if (TryComplete())
        {
            _core.SetException(error);
        }
    }

    /// <summary>Completes it as cancelled, unless it is already answered.</summary>
    /// <returns><c>true</c> when this call cancelled it.</returns>
    public bool TryCancel(CancellationToken cancellationToken)
    {
        if (!TryComplete())
        {
            return false;
        }

        _core.SetException(new TaskCanceledException(null, null, cancellationToken));
        return true;
    }

    /// <summary>The grant, withdrawn if <paramref name="cancellationToken"/> fires first.</summary>
    public ValueTask<TResult> WaitAsync(CancellationToken cancellationToken) =>
        cancellationToken.CanBeCanceled ? WaitCancellableAsync(cancellationToken) : Completion;

    /// <summary>As <see cref="WaitAsync"/>, as a task (one task, whether or not the token can fire).</summary>
    public Task<TResult> WaitAsTaskAsync(CancellationToken cancellationToken) =>
        cancellationToken.CanBeCanceled ? WaitCancellableTaskAsync(cancellationToken) : Completion.AsTask();

    /// <inheritdoc />
    public TResult GetResult(short token) => _core.GetResult(token);

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>The failure for a waiter that reached an actor already stopped.</summary>
    public abstract void Undelivered();

    /// <summary>What the caller gets for <paramref name="grant"/>.</summary>
    protected abstract TResult ResultOf(in PermitGrant grant);

    /// <summary>
    /// From the caller's token: cancels first, then tells the server to drop the waiter. A waiter whose cancellation
    /// the server completes (a condition wait takes the lock back first) overrides this to tell without cancelling.
    /// </summary>
    protected virtual void OnCancellationRequested(CancellationToken cancellationToken)
    {
        if (TryCancel(cancellationToken))
        {
            TellServer(new WithdrawWaiter(this, cancellationToken));
        }
    }

    /// <summary>Sends <paramref name="message"/> to the actor that serves this waiter.</summary>
    protected void TellServer(object message) => _server.Tell(message, ActorRefs.NoSender);

    private bool TryComplete() => Interlocked.Exchange(ref _completed, 1) == 0;

    private async ValueTask<TResult> WaitCancellableAsync(CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.UnsafeRegister(
            static (state, token) => ((FacadeWaiter<TResult>)state!).OnCancellationRequested(token), this);
        return await Completion.ConfigureAwait(false);
    }

    private async Task<TResult> WaitCancellableTaskAsync(CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.UnsafeRegister(
            static (state, token) => ((FacadeWaiter<TResult>)state!).OnCancellationRequested(token), this);
        return await Completion.ConfigureAwait(false);
    }
}

/// <summary>A facade caller cancelled: the server drops its waiter if it still waits (or, for a deferred cancellation, completes it).</summary>
/// <param name="Waiter">The waiter.</param>
/// <param name="Token">The token that fired.</param>
internal sealed record WithdrawWaiter(PermitWaiter Waiter, CancellationToken Token) : IDeadLetterSuppression;
