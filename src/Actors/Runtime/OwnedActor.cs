using System.Diagnostics;
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
    /// <summary>The claim of a disposal that sends no message of <see cref="Stop"/>'s: <see cref="TryClaim"/>, the finaliser.</summary>
    private static readonly object ClaimedOtherwise = new();

    /// <summary>Makes the stop message.</summary>
    private readonly Func<TStop> _stopMessage;

    /// <summary>
    /// The disposal's claim, set once by one CAS from <c>null</c>: the stop message <see cref="Stop"/> sends (made before
    /// the claim, so every later caller gets a message that is sent), or <see cref="ClaimedOtherwise"/>.
    /// </summary>
    private object? _claim;

    public OwnedActor(IActorRef actor, Func<TStop> stopMessage)
    {
        Actor = actor;
        _stopMessage = stopMessage;
    }

    ~OwnedActor()
    {
        if (Interlocked.CompareExchange(ref _claim, ClaimedOtherwise, null) is null)
        {
            Actor.Tell(_stopMessage(), ActorRefs.NoSender);
        }
    }

    /// <summary>The owned actor.</summary>
    public IActorRef Actor { get; }

    /// <summary>Whether the facade has been disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _claim) is not null;

    /// <summary>Throws <see cref="ObjectDisposedException"/> for <paramref name="facade"/> once it is disposed.</summary>
    public void ThrowIfDisposed(object facade) => ObjectDisposedException.ThrowIf(IsDisposed, facade);

    /// <summary>
    /// Claims the disposal: the first caller sends a new stop message and returns it (to await its completion); every
    /// later caller, even one that comes while the first is still sending it, gets that same message, so a second
    /// <c>DisposeAsync</c> completes with the first, never before the stop. <c>null</c> only when the disposal was
    /// claimed otherwise (<see cref="TryClaim"/>, the finaliser), which sends no message of this method's.
    /// </summary>
    public TStop? Stop()
    {
        if (Volatile.Read(ref _claim) is { } claimed)
        {
            return claimed as TStop;
        }

        // Made before the claim and published by it: whoever reads the claim from now on gets a message this call sends.
        var stop = _stopMessage();
        Debug.Assert(stop is not null, "the stop message factory made null");
        if (Interlocked.CompareExchange(ref _claim, stop, null) is { } earlier)
        {
            return earlier as TStop;
        }

        GC.SuppressFinalize(this);
        Actor.Tell(stop, ActorRefs.NoSender);
        return stop;
    }

    /// <summary>Claims the disposal without sending anything: <c>true</c> for the first caller, who then stops the actor itself.</summary>
    public bool TryClaim()
    {
        if (Interlocked.CompareExchange(ref _claim, ClaimedOtherwise, null) is not null)
        {
            return false;
        }

        GC.SuppressFinalize(this);
        return true;
    }
}
