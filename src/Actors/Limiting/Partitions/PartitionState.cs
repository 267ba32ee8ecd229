namespace ActorQueue.Actors;

/// <summary>Whether a partition still serves requests.</summary>
internal enum PartitionState
{
    /// <summary>In the table: it serves every request.</summary>
    Live,

    /// <summary>Dropped by a sweep: a request that reaches it goes to the actor, which routes it to the key's next partition.</summary>
    Dropped,

    /// <summary>Its limiter stopped: a request that reaches it fails as undelivered.</summary>
    Stopped,
}
