namespace ActorQueue.Coordination;

/// <summary>
/// A policy over time that comes back to rest on its own (a bucket refilled and out of debt, a window emptied): a
/// gate that is dropped and made anew then loses nothing, which is when a partition's gatekeeper may stop.
/// </summary>
internal interface IRestingPolicy : IPermitPolicy
{
    /// <summary>When it is at rest, if nobody takes more: <paramref name="now"/> if it is already.</summary>
    TimeSpan RestsAt(TimeSpan now);

    /// <summary>When it next gives something back by itself (a refill, a segment sliding out); <see cref="TimeSpan.MaxValue"/> if it is at rest.</summary>
    TimeSpan NextGainAt(TimeSpan now);
}
