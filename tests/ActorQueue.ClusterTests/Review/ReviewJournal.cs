using System.Collections.Immutable;
using Akka.Persistence;
using Akka.Persistence.Journal;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Akka's in-memory journal for the review: writes can be held (<see cref="CloseGate"/>), events rejected
/// (<see cref="RejectWhen"/>), and the events written are counted. One test at a time uses it (the cluster collection is serial).
/// </summary>
public sealed class ReviewJournal : MemoryJournal
{
    private static TaskCompletionSource? _gate;

    private static int _events;

    /// <summary>Completed when a write reaches a closed gate.</summary>
    public static TaskCompletionSource WriteArrived { get; private set; } = NewSource();

    /// <summary>Rejects (as a journal refusing an event) every event whose bytes match.</summary>
    public static Func<byte[], bool>? RejectWhen { get; set; }

    /// <summary>Events written so far.</summary>
    public static int Events => Volatile.Read(ref _events);

    public static void Reset()
    {
        _gate?.TrySetResult();
        _gate = null;
        RejectWhen = null;
        WriteArrived = NewSource();
        Volatile.Write(ref _events, 0);
    }

    public static void CloseGate() => _gate = NewSource();

    public static void OpenGate() => _gate?.TrySetResult();

    protected override async Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToList();
        if (_gate is { } gate)
        {
            WriteArrived.TrySetResult();
            await gate.Task.ConfigureAwait(false);
        }

        var reject = RejectWhen;
        var results = new List<Exception?>(writes.Count);
        var kept = new List<AtomicWrite>(writes.Count);
        foreach (var write in writes)
        {
            var events = (IImmutableList<IPersistentRepresentation>)write.Payload;
            if (reject is not null && events.Any(e => e.Payload is byte[] bytes && reject(bytes)))
            {
                results.Add(new InvalidOperationException("The review journal rejects this event"));
            }
            else
            {
                kept.Add(write);
                results.Add(null);
            }
        }

        await base.WriteMessagesAsync(kept, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _events, kept.Sum(write => ((IImmutableList<IPersistentRepresentation>)write.Payload).Count));
        return results.ToImmutableList();
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
