using ActorQueue.Actors;
using Akka.Actor;
using Akka.Persistence;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// Akka's in-memory journal whose replays wait for <see cref="Open"/> (<see cref="ReplayArrived"/> tells when one is
/// there), and then fail when <see cref="FailReplay"/> is set. Its gate is static per <typeparamref name="TOwner"/>,
/// the one test class that uses that closed type (one test at a time), so classes running in parallel never share a
/// gate; each names it with a using alias.
/// </summary>
/// <typeparam name="TOwner">The test class whose gate this is.</typeparam>
public sealed class ReplayGateJournal<TOwner> : Akka.Persistence.Journal.MemoryJournal
{
    /// <summary>The journal's plugin id: one per owner.</summary>
    public static readonly string PluginId = $"replay-gate-{typeof(TOwner).Name}.journal";

    public static volatile TaskCompletionSource Open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static volatile TaskCompletionSource ReplayArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static volatile bool FailReplay;

    /// <summary>Queues that journal here (and snapshot in memory).</summary>
    public static QueueDurability Durability => new() { JournalPluginId = PluginId, SnapshotPluginId = "akka.persistence.snapshot-store.inmem" };

    /// <summary>An actor system named <paramref name="name"/> with this journal configured (the test terminates it).</summary>
    public static ActorSystem System(string name) => ActorSystem.Create(name, Akka.Configuration.ConfigurationFactory
        .ParseString($"{PluginId}.class = \"{typeof(ReplayGateJournal<TOwner>).AssemblyQualifiedName}\"")
        .WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig));

    /// <summary>The next replay waits at the journal until <see cref="Open"/> is set.</summary>
    public static void Close() => (Open, ReplayArrived) = (new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Opens the gate and returns the items the queue <paramref name="name"/> holds when opened again (drained) once its name is free.</summary>
    public static async Task<IReadOnlyList<int>> ReopenedItems(ActorSystem system, string name, TimeSpan bound)
    {
        Open.TrySetResult();
        BoundedQueue<int>? reopened = null;
        await Poll.UntilAsync(() =>
        {
            try
            {
                reopened = new BoundedQueue<int>(10, Durability, name, system: system);
                return true;
            }
            catch (InvalidOperationException)
            {
                return false; // the name is still taken
            }
        }, bound, $"the queue {name} can be opened again");
        await using (reopened!)
        {
            return await reopened!.DrainAsync().WaitAsync(bound);
        }
    }

    /// <inheritdoc />
    public override async Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
                                                   Action<IPersistentRepresentation> recoveryCallback)
    {
        ReplayArrived.TrySetResult();
        await Open.Task.ConfigureAwait(false);
        if (FailReplay)
        {
            throw new InvalidOperationException("the journal fails the replay (review test)");
        }

        await base.ReplayMessagesAsync(context, persistenceId, fromSequenceNr, toSequenceNr, max, recoveryCallback).ConfigureAwait(false);
    }
}
