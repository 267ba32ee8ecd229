using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// One caller waiting for permits: a facade's awaitable (<see cref="FacadeWaiter{TResult}"/>) or an actor to answer
/// (<see cref="ActorWaiter"/>). It stands in one queue at a time. Whoever serves it (a <see cref="PermitGate"/>, or
/// the cluster limiter's node agent, which forwards it) grants, fails or tells it that it waits, through these members
/// only: nobody switches on the kind of waiter.
/// </summary>
/// <remarks>
/// What a request may ask beyond one permit (<see cref="Demand"/>, <see cref="Priority"/>, <see cref="Timeout"/>) and
/// who it is (<see cref="Owner"/>, <see cref="Source"/>) are virtual with the common answer as default, so a waiter
/// carries a field only for what its kind uses: a limiter's waiter is its own message and its size is what a waiting
/// caller costs.
/// </remarks>
internal abstract class PermitWaiter : WaiterNode<PermitWaiter>
{
    /// <summary>
    /// When the request queued (<see cref="Stopwatch.GetTimestamp"/>), for a wait-time metric; 0 when nobody measured it.
    /// Written by the gate's owner only.
    /// </summary>
    public long ArrivedAt;

    /// <summary>What it asks of every policy.</summary>
    public virtual PermitDemand Demand => PermitDemand.One;

    /// <summary>Higher is served first; FIFO within one priority.</summary>
    public virtual int Priority => 0;

    /// <summary>How long it may wait: <c>null</c> for ever, <see cref="TimeSpan.Zero"/> not at all.</summary>
    public virtual TimeSpan? Timeout => null;

    /// <summary>
    /// How long it may still wait when a gate queues it: its <see cref="Timeout"/>, or what was left of it for a waiter
    /// carried over from a gate that had it queued (a restarted gatekeeper's).
    /// </summary>
    public virtual TimeSpan? TimeLeft => Timeout;

    /// <summary>Who waits (a flow token, a borrower, an actor); <c>null</c> for an anonymous facade caller.</summary>
    public virtual object? Owner => null;

    /// <summary>Who asks, for rejection texts and announces.</summary>
    public virtual string Source => string.Empty;

    /// <summary>Whether it has withdrawn (a facade caller cancelled, from any thread). Actor waiters withdraw by message, never here.</summary>
    public abstract bool IsWithdrawn { get; }

    /// <summary>Hands it the grant.</summary>
    /// <returns><c>false</c> when it withdrew at this instant: it holds nothing and the grant goes back.</returns>
    public abstract bool TryGrant(in PermitGrant grant);

    /// <summary>Fails it: rejected, evicted, timed out, refused or disposed.</summary>
    public abstract void Fail(Exception error);

    /// <summary>Tells it that it waits (a <c>Queued</c> reply, a trace signal); nothing by default.</summary>
    public virtual void OnQueued(in PermitSnapshot now)
    {
    }
}
