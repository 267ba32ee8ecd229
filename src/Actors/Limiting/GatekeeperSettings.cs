using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>What a <see cref="GatekeeperActor"/> is made with.</summary>
/// <param name="MaxRunning">How many permits there are.</param>
/// <param name="MaxQueued">How many may wait; <c>null</c> for no bound.</param>
/// <param name="WaitTimeout">The default wait timeout of actor callers that name none; <c>null</c> for ever (facades resolve their own).</param>
/// <param name="WhenFull">What a full queue does with a newcomer.</param>
/// <param name="Name">The limiter's name, <c>null</c> when unnamed.</param>
/// <param name="MetricName">The name on its metrics.</param>
/// <param name="Counts">Where the counts go for synchronous reads.</param>
/// <param name="Time">The clock for wait timeouts.</param>
internal sealed record GatekeeperSettings(int MaxRunning, int? MaxQueued, TimeSpan? WaitTimeout, QueueFullMode WhenFull,
                                         string? Name, string MetricName, LimiterCounts Counts, TimeProvider Time)
{
    /// <summary>
    /// Makes the limits over time (requests or tokens per period) checked and granted together with the permits; called
    /// once per gatekeeper, so each partition has buckets of its own. <c>null</c> for a concurrency limit only.
    /// </summary>
    public Func<IRestingPolicy[]>? Rates { get; init; }

    /// <summary>
    /// The stamp on <see cref="Time"/> the gate's time counts from, read by the facade as it is made, so that a clock
    /// that throws there throws from the facade's constructor (as the other limiters' constructors, which read it too)
    /// rather than leave an actor that never started; <c>null</c>: the actor reads it.
    /// </summary>
    public long? StartedAt { get; init; }

    /// <summary>Where slots, requests and tokens are lent to callers that need not wait, from the limiter's construction (its first loan) on; <c>null</c> for none.</summary>
    public RateLoan? RateLoan { get; init; }

    /// <summary>
    /// The facade's one stop message (its <see cref="Runtime.OwnedActor{TStop}"/> sends this very one), which the actor
    /// completes once it has stopped and failed its waiters, whatever stopped it; <c>null</c>: only a stop message that
    /// arrives is completed. A dispose racing the system's termination may lose its message (Akka drops a message
    /// enqueued into a mailbox its stopping actor has just drained), and a completion that came only with the message
    /// it carried never came.
    /// </summary>
    public DisposeGatekeeper? Stop { get; init; }
}
