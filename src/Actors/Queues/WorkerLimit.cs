namespace ActorQueue.Actors;

/// <summary>
/// How a queue's worker calls are capped: through a gatekeeper, through the queue's own <see cref="QueueSlots"/>, or
/// both. Each worker's task holds what it took across consecutive items (<see cref="WorkerPermit"/>) and lets go when
/// it goes idle or when someone waits.
/// </summary>
/// <param name="Gatekeeper">The limiter asked for a permit; <c>null</c> when the queue's own slots suffice.</param>
/// <param name="Slots">The queue's own slots, when the limiter is the queue's own.</param>
internal sealed record WorkerLimit(IConcurrencyLimiter? Gatekeeper, QueueSlots? Slots)
{
    /// <summary>
    /// Whether a permit may be held across items while nobody waits. Only a local <see cref="ConcurrencyLimiter"/>
    /// publishes its waiters exactly (as of the gatekeeper's last message); another limiter's count may lag (a cluster
    /// limiter's is as of the node's last update), so its permit is given back after every item, as before.
    /// </summary>
    public bool HoldsAcrossItems { get; } = Gatekeeper is ConcurrencyLimiter;

    /// <summary>
    /// The limit for <paramref name="workers"/> workers capped by <paramref name="limiter"/>. A queue's own limiter with
    /// at least as many permits as workers cannot hold any worker back: the queue's own slots then count the calls and
    /// no gatekeeper is asked (a shrink below the worker count still holds, through the slots). With fewer permits the
    /// workers queue at the gatekeeper, inside the same slots, so generations of workers in different modes never
    /// exceed the cap together.
    /// </summary>
    public static WorkerLimit? For(IConcurrencyLimiter? limiter, QueueSlots? ownSlots, int workers)
    {
        if (limiter is null)
        {
            return null;
        }

        if (ownSlots is null)
        {
            return new WorkerLimit(limiter, null);
        }

        return workers <= limiter.MaxRunning ? new WorkerLimit(null, ownSlots) : new WorkerLimit(limiter, ownSlots);
    }

    /// <summary>
    /// Whether a worker holding a permit should give it back after its item: someone waits for one, or a shrink left
    /// more held than the limiter now has (a held permit is not revoked, but it must not outlive the item in hand).
    /// </summary>
    public bool ShouldLetGo() =>
        (Gatekeeper is { } gatekeeper
         && (!HoldsAcrossItems || gatekeeper.WaitingCount > 0 || gatekeeper.RunningCount > gatekeeper.MaxRunning))
        || Slots is { ShouldLetGo: true };
}

/// <summary>
/// One worker task's hold on its limit: taken before an item when not held, kept across the items that follow while
/// nobody waits, given back after an item when someone does, and when the task goes idle or ends. Used by the task's
/// own flow only.
/// </summary>
internal sealed class WorkerPermit(WorkerLimit limit, string source)
{
    /// <summary>The gatekeeper's lease while held (none when only the queue's slots count).</summary>
    private ConcurrencyLease? _lease;

    /// <summary>Whether the task holds its permit (lease and slot) now.</summary>
    public bool IsHeld { get; private set; }

    /// <summary>Takes the permit unless held; on failure or cancellation holds nothing.</summary>
    public ValueTask EnsureAsync(CancellationToken cancellationToken) => IsHeld ? default : TakeAsync(cancellationToken);

    /// <summary>After an item: gives the permit back if someone waits for it (they are served first, in their order).</summary>
    public void AfterItem()
    {
        if (IsHeld && limit.ShouldLetGo())
        {
            Release();
        }
    }

    /// <summary>Gives the permit back, if held.</summary>
    public void Release()
    {
        if (!IsHeld)
        {
            return;
        }

        IsHeld = false;
        limit.Slots?.Exit();
        var lease = _lease;
        _lease = null;
        lease?.Dispose();
    }

    private async ValueTask TakeAsync(CancellationToken cancellationToken)
    {
        var lease = limit.Gatekeeper is { } gatekeeper ? await gatekeeper.AcquireAsync(source, cancellationToken).ConfigureAwait(false) : null;
        if (limit.Slots is { } slots)
        {
            try
            {
                await slots.EnterAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                lease?.Dispose();
                throw;
            }
        }

        _lease = lease;
        IsHeld = true;
    }
}
