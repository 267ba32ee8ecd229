namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// The system clock, except that the next readings asked for with <see cref="FailNext"/> throw: a durable router reads
/// <c>QueueDurability.Clock</c> on its own thread only, so a failing reading is an exception there (a restart).
/// </summary>
internal sealed class FailingClock : TimeProvider
{
    /// <summary>Readings still to fail.</summary>
    private int _left;

    /// <summary>1 once a reading has failed.</summary>
    private int _failed;

    /// <summary>Whether a reading asked to fail has not come yet.</summary>
    public bool Armed => Volatile.Read(ref _left) > 0;

    /// <summary>Whether some reading has failed.</summary>
    public bool Failed => Volatile.Read(ref _failed) == 1;

    /// <summary>The next <paramref name="readings"/> readings throw (0: none; <see cref="int.MaxValue"/>: every one until told otherwise).</summary>
    public void FailNext(int readings) => Volatile.Write(ref _left, readings);

    public override DateTimeOffset GetUtcNow()
    {
        for (var left = Volatile.Read(ref _left); left > 0; left = Volatile.Read(ref _left))
        {
            if (Interlocked.CompareExchange(ref _left, left - 1, left) == left)
            {
                Volatile.Write(ref _failed, 1);
                throw new InvalidOperationException("the clock failed (test)");
            }
        }

        return System.GetUtcNow();
    }
}
