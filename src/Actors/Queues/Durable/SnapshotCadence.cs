namespace ActorQueue.Actors;

/// <summary>
/// When a persistent queue snapshots its book: after every <c>every</c> events written, one snapshot at a time. Shared by
/// the durable router and the cluster's durable distributed-queue journal; its owner calls <c>SaveSnapshot</c> when
/// <see cref="Written"/> says so and <see cref="Ended"/> when the save succeeded or failed.
/// </summary>
/// <param name="every">Events between snapshots (<see cref="QueueDurability.SnapshotEvery"/>).</param>
internal sealed class SnapshotCadence(int every)
{
    private int _eventsSince;

    private bool _saving;

    /// <summary>Counts <paramref name="events"/> written; <c>true</c> when a snapshot is due now (it is then in progress until <see cref="Ended"/>).</summary>
    public bool Written(int events)
    {
        _eventsSince += events;
        if (_eventsSince < every || _saving)
        {
            return false;
        }

        _eventsSince = 0;
        _saving = true;
        return true;
    }

    /// <summary>The snapshot in progress was saved or failed: the next one may start.</summary>
    public void Ended() => _saving = false;
}
