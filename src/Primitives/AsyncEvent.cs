using System.Diagnostics;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>A one-shot async event: <see cref="Set"/> releases every waiter, and later waits complete at once.</summary>
/// <remarks>Facade callers all await one task that <see cref="Set"/> completes (no message per waiter; see
/// <c>EventState</c>). Actor callers send <see cref="CoordinatorProtocol.Acquire"/> to wait and <see cref="CoordinatorProtocol.Set"/> to set.</remarks>
[DebuggerDisplay("AsyncEvent: set = {IsSet}")]
public sealed class AsyncEvent : IDisposable, IAsyncDisposable
{
    private readonly CoordinatorHandle _handle;
    private readonly EventState _state = new();

    /// <summary>Creates an unset event.</summary>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    public AsyncEvent(ActorSystem? system = null)
    {
        _handle = new CoordinatorHandle(system, EventCoordinator.Props(_state), "event");
    }

    /// <summary>Whether the event has been set.</summary>
    public bool IsSet => _state.IsSet;

    /// <summary>Actor callers waiting in the coordinator, as of the last message it handled (facade callers share one task instead).</summary>
    internal int WaitingCount => _state.Waiting;

    /// <summary>The coordinator actor, for actor callers.</summary>
    public IActorRef Coordinator => _handle.Coordinator;

    /// <summary>Sets the event: every waiter is released. Setting it again does nothing.</summary>
    /// <exception cref="ObjectDisposedException">The event has been disposed, or its actor system has stopped.</exception>
    public void Set()
    {
        ThrowIfGone();
        _state.MarkSet();
        Coordinator.Tell(CoordinatorProtocol.Set.Instance, ActorRefs.NoSender);
    }

    /// <summary>Waits until the event is set; completes at once if it already is.</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns>A task that completes when the event is set.</returns>
    /// <exception cref="ObjectDisposedException">The event has been disposed, or its actor system has stopped.</exception>
    public Task WaitAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfGone();
        if (_state.IsSet)
        {
            return Task.CompletedTask;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var shared = _state.Join();
        return cancellationToken.CanBeCanceled ? shared.WaitAsync(cancellationToken) : shared;
    }

    /// <summary>Stops the coordinator; waiters get <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _state.Abandon(Disposed());
        _handle.Dispose();
    }

    /// <summary>Stops the coordinator and waits until it has stopped.</summary>
    /// <returns>A task that completes when the coordinator has stopped.</returns>
    public ValueTask DisposeAsync()
    {
        _state.Abandon(Disposed());
        return _handle.DisposeAsync();
    }

    /// <summary>Refuses a call on a disposed event, or on one whose actor system stopped (its coordinator abandoned it).</summary>
    private void ThrowIfGone()
    {
        _handle.ThrowIfDisposed(this);
        if (_state.IsAbandoned)
        {
            throw Disposed();
        }
    }

    private static ObjectDisposedException Disposed() => new(nameof(AsyncEvent), $"The {nameof(AsyncEvent)} has been disposed.");
}
