using System.Collections.Immutable;
using Akka.Persistence;
using Akka.Persistence.Journal;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Akka's in-memory journal whose writes wait until <see cref="Open"/> completes, so a test can look at a durable
/// router while its events are not yet written. One test at a time uses it (the cluster collection is serial).
/// </summary>
public sealed class GatedJournal : MemoryJournal
{
    /// <summary>Completed by the test to let every write through.</summary>
    public static TaskCompletionSource Open { get; private set; } = NewSource();

    /// <summary>Completed when the first write reaches the journal.</summary>
    public static TaskCompletionSource WriteArrived { get; private set; } = NewSource();

    public static void Reset() => (Open, WriteArrived) = (NewSource(), NewSource());

    protected override async Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        WriteArrived.TrySetResult();
        await Open.Task.ConfigureAwait(false);
        return await base.WriteMessagesAsync(messages, cancellationToken).ConfigureAwait(false);
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
