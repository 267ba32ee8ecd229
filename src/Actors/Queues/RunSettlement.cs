namespace ActorQueue.Actors;

/// <summary>
/// How a worker run ended, for the ledger: of <see cref="Items"/>, the first <see cref="Completed"/> finished
/// (<see cref="Failed"/> of them with an error), the next <see cref="Lost"/> (0 or 1) was lost to a crash, and the rest
/// go back to the head of the queue.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
internal readonly record struct RunSettlement<T>(T[] Items, int Completed, int Failed, int Lost)
{
    /// <summary>Nothing to settle: the report names a run already accounted for.</summary>
    public static RunSettlement<T> None => new([], 0, 0, 0);

    /// <summary>Whether the report settled a run the worker held.</summary>
    public bool Settles => Items.Length > 0;

    /// <summary>The item lost to a crash (when <see cref="Lost"/> is 1).</summary>
    public T LostItem => Items[Completed];
}
