namespace ActorQueue.Tests.Queues;

/// <summary>A lazy sequence of 0, 1, 2, … that counts how many items its reader has taken: what a batch has read so far.</summary>
internal sealed class CountedSequence(int count = 100)
{
    private int _read;

    /// <summary>How many items have been read.</summary>
    public int Read => Volatile.Read(ref _read);

    /// <summary>The items, each counted as it is read.</summary>
    public IEnumerable<int> Items()
    {
        for (var i = 0; i < count; i++)
        {
            Interlocked.Increment(ref _read);
            yield return i;
        }
    }
}
