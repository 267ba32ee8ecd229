using Akka.Actor;

namespace ActorQueue.Runtime;

/// <summary>
/// The actor a facade owns, and who stops it: the facade's Dispose, once, or this object's finaliser when the facade
/// is dropped without Dispose, so a forgotten facade leaks no actor. Only the facade refers to it (never its actor),
/// so it becomes unreachable together with the facade.
/// </summary>
/// <typeparam name="TStop">The message that tells the actor to stop.</typeparam>
internal sealed class OwnedActor<TStop>
    where TStop : class
{
    /// <summary>Makes the stop message the finaliser sends.</summary>
    private readonly Func<TStop> _stopMessage;

    /// <summary>1 once the facade has claimed the disposal (or the finaliser has run).</summary>
    private int _disposed;

    /// <summary>The stop message the first <see cref="Stop"/> sent, handed to later callers so they await the same stop.</summary>
    private TStop? _stop;

    public OwnedActor(IActorRef actor, Func<TStop> stopMessage)
    {
        Actor = actor;
        _stopMessage = stopMessage;
    }

    ~OwnedActor()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Actor.Tell(_stopMessage(), ActorRefs.NoSender);
        }
    }

    /// <summary>The owned actor.</summary>
    public IActorRef Actor { get; }

    /// <summary>Whether the facade has been disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Throws <see cref="ObjectDisposedException"/> for <paramref name="facade"/> once it is disposed.</summary>
    public void ThrowIfDisposed(object facade) => ObjectDisposedException.ThrowIf(IsDisposed, facade);

    /// <summary>
    /// Claims the disposal: for the first caller, sends a new stop message and returns it (to await its completion);
    /// every later caller gets the same message, so a second <c>DisposeAsync</c> (after a <c>Dispose</c>, say) completes
    /// with the first; <c>null</c> when the disposal was claimed otherwise (<see cref="TryClaim"/>, the finaliser) or
    /// its first caller has not sent its message yet.
    /// </summary>
    public TStop? Stop()
    {
        if (!TryClaim())
        {
            return Volatile.Read(ref _stop);
        }

        var stop = _stopMessage();
        Volatile.Write(ref _stop, stop);
        Actor.Tell(stop, ActorRefs.NoSender);
        return stop;
    }

    /// <summary>Claims the disposal without sending anything: <c>true</c> for the first caller, who then stops the actor itself.</summary>
    public bool TryClaim()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        GC.SuppressFinalize(this);
        return true;
    }
}
