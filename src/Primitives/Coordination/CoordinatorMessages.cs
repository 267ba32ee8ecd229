using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Primitives.Coordination;

/// <summary>An actor that waited or held has stopped.</summary>
internal sealed record OwnerStopped(IActorRef Owner);

/// <summary>The facade is disposed or dropped: fail every waiter and stop.</summary>
internal sealed class DisposeCoordinator : IUndeliverableRequest
{
    public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Stopped.TrySetResult();
}

/// <summary>A facade command the coordinator answers by completing <see cref="Completion"/>.</summary>
internal abstract class CoordinatorCommand<TResult> : IUndeliverableRequest
{
    public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Completion.TrySetException(new ObjectDisposedException("primitive", "The primitive has been disposed."));
}
