namespace ActorQueue.Primitives;

/// <summary>
/// The message protocol every primitive's coordinator (<c>Coordinator</c> property) speaks with actor callers.
/// The sending actor is the owner: for <see cref="AsyncLock"/> the lock holder (reentrant per actor), for
/// <see cref="AsyncCapacityLimiter"/> the borrower. A coordinator watches the actors that wait or hold: when one
/// stops, its waits are withdrawn and what it holds is released.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="AsyncLock"/>, <see cref="AsyncSemaphore"/>, <see cref="AsyncCapacityLimiter"/>: <see cref="Acquire"/> → <see cref="Acquired"/>; <see cref="Release"/> (no reply, <see cref="Refused"/> on misuse).</item>
/// <item><see cref="AsyncEvent"/>: <see cref="Acquire"/> waits for the event → <see cref="Acquired"/>; <see cref="Set"/> sets it.</item>
/// <item><see cref="CancelAcquire"/> withdraws a waiting request → <see cref="Cancelled"/>.</item>
/// </list>
/// </remarks>
public static class CoordinatorProtocol
{
    /// <summary>Takes the primitive (or, for an event, waits until it is set); the reply is <see cref="Acquired"/> or <see cref="Refused"/>.</summary>
    /// <param name="RequestId">The caller's number for this request, echoed in the reply.</param>
    public sealed record Acquire(long RequestId);

    /// <summary>The request is granted: the actor now holds the lock, a permit or a token (or the event is set).</summary>
    /// <param name="RequestId">The request this answers.</param>
    public sealed record Acquired(long RequestId);

    /// <summary>Gives back what the sending actor holds. No reply; <see cref="Refused"/> when it holds nothing.</summary>
    /// <param name="RequestId">Echoed in a <see cref="Refused"/> reply.</param>
    public sealed record Release(long RequestId = 0);

    /// <summary>The request was refused: misuse (release without holding, a second token for one borrower) or a disposed primitive.</summary>
    /// <param name="RequestId">The request this answers.</param>
    /// <param name="Reason">Why.</param>
    public sealed record Refused(long RequestId, string Reason);

    /// <summary>Withdraws a waiting request; the reply is <see cref="Cancelled"/>, or nothing if it was already granted.</summary>
    /// <param name="RequestId">The request to withdraw.</param>
    public sealed record CancelAcquire(long RequestId);

    /// <summary>The waiting request was withdrawn and holds nothing.</summary>
    /// <param name="RequestId">The request withdrawn.</param>
    public sealed record Cancelled(long RequestId);

    /// <summary>Sets an <see cref="AsyncEvent"/>: every waiter is released, later waits complete at once.</summary>
    public sealed record Set
    {
        /// <summary>The one instance.</summary>
        public static Set Instance { get; } = new();
    }
}
