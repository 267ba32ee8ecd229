namespace ActorQueue.Coordination;

/// <summary>
/// What a permit is, for one limit of a <see cref="PermitGate"/>: a pool of slots, a semaphore's value, a latch, a
/// rate over time. The gate owns the queue and the rule (FIFO by priority, no barging, all policies at once); the
/// policy owns only its count. Called on the gate owner's thread; <c>now</c> is the gate's clock, read only when a
/// policy <see cref="IsTimed"/> (otherwise it is <see cref="TimeSpan.Zero"/>).
/// </summary>
internal interface IPermitPolicy
{
    /// <summary>Which part of a demand it counts.</summary>
    PermitMeasure Measure { get; }

    /// <summary>Whether its answers change with time alone (a refill, a sliding window).</summary>
    bool IsTimed { get; }

    /// <summary>The largest cost it can ever grant; <see cref="long.MaxValue"/> for none.</summary>
    long Limit { get; }

    /// <summary>What is held (a pool) or used in the current window (a rate) now.</summary>
    long InUse { get; }

    /// <summary>What it could grant now.</summary>
    long Available(TimeSpan now);

    /// <summary>Whether <paramref name="cost"/> fits now; pure but for catching up on time.</summary>
    bool CanTake(long cost, TimeSpan now);

    /// <summary>Takes <paramref name="cost"/>: right after <see cref="CanTake"/> said yes, or unchecked when a recovered hold is adopted.</summary>
    void Take(long cost, TimeSpan now);

    /// <summary>The exact inverse of <see cref="Take"/>: the grant never reached its caller.</summary>
    void Refund(long cost, TimeSpan now);

    /// <summary>A holder is done: a pool frees the cost, a rate forgets nothing.</summary>
    void Release(long cost, TimeSpan now);

    /// <summary>A holder reports what it really used: a rate gives back the unused part or carries the excess as debt; a pool does nothing.</summary>
    void Settle(long charged, long actual, TimeSpan now);

    /// <summary>When <paramref name="cost"/> will fit: <paramref name="now"/> if it fits, <see cref="TimeSpan.MaxValue"/> if only a release can free it.</summary>
    TimeSpan NextAvailableAt(long cost, TimeSpan now);

    /// <summary>Sets a new limit; what is held stays held.</summary>
    void Resize(long limit);
}
