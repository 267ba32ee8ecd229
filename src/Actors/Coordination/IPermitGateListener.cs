namespace ActorQueue.Coordination;

/// <summary>
/// The gate owner's side of a <see cref="PermitGate"/>: its mirrors for synchronous reads, its books of who holds
/// what, its telemetry, and what a rejected waiter is told. Called on the owner's thread, inside the gate's methods.
/// </summary>
internal interface IPermitGateListener
{
    /// <summary>The counts changed. Called after every change (a release that grants at once: with its grant) and before any waiter hears of it.</summary>
    void Publish(in PermitSnapshot now);

    /// <summary><paramref name="waiter"/> now stands in the queue (published already; it is told next).</summary>
    void Queued(PermitWaiter waiter);

    /// <summary>
    /// <paramref name="waiter"/> is about to hear of <paramref name="grant"/>: record the holder now (a lock's owner,
    /// a borrower), so that what the caller does next already finds it.
    /// </summary>
    void Granting(PermitWaiter waiter, in PermitGrant grant);

    /// <summary><paramref name="waiter"/> had withdrawn as it was granted: undo <see cref="Granting"/> (the gate has given the permits back).</summary>
    void GrantLost(PermitWaiter waiter, in PermitGrant grant);

    /// <summary><paramref name="waiter"/> holds <paramref name="grant"/> now.</summary>
    void Granted(PermitWaiter waiter, in PermitGrant grant);

    /// <summary><paramref name="waiter"/> is turned away; returns the exception it is failed with.</summary>
    Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection);
}
