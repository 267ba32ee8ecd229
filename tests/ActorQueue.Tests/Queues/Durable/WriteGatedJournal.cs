using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// Akka's in-memory journal whose writes wait for <see cref="Open"/>, or are rejected while <see cref="RejectWrites"/>
/// is set. Its gates are static: the test classes using it share <see cref="Collection"/>, so they run one at a time.
/// </summary>
public sealed class WriteGatedJournal : Akka.Persistence.Journal.MemoryJournal
{
    /// <summary>The xunit collection of every test class that uses this journal.</summary>
    public const string Collection = "write-gated journal";

    private const string PluginId = "gated.journal";

    public static volatile TaskCompletionSource Open = Completed();

    public static volatile TaskCompletionSource WriteArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>While set, every write is rejected (each AtomicWrite answered with an exception: OnPersistRejected).</summary>
    public static volatile bool RejectWrites;

    /// <summary>Queues that journal here (and snapshot in memory).</summary>
    public static QueueDurability Durability => new() { JournalPluginId = PluginId, SnapshotPluginId = "akka.persistence.snapshot-store.inmem" };

    /// <summary>The next write waits at the journal (<see cref="WriteArrived"/> tells when it is there) until <see cref="Open"/> is set.</summary>
    public static void Close() => _ = HoldNextWrite();

    /// <summary>As <see cref="Close"/>.</summary>
    /// <returns>
    /// The held write's arrival. A test whose journal is closed on another thread (by a batch's sequence, as it reads an
    /// item) awaits this task, handed over from there: the <see cref="WriteArrived"/> field it would read may still be the
    /// one before the close, completed by any earlier write — of this test's or of an earlier test's in the collection —
    /// and the test then went on before the item was even read (a CI failure of
    /// <c>BatchStopReviewTests.A_cancelled_durable_batch_whose_held_write_is_then_rejected_accounts_for_every_item_once</c>).
    /// </returns>
    public static Task HoldNextWrite()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        (Open, WriteArrived) = (new(TaskCreationOptions.RunContinuationsAsynchronously), arrived);
        return arrived.Task;
    }

    /// <summary>An actor system of the test's own with this journal under <see cref="Durability"/>'s plugin id.</summary>
    public static ActorSystem System(string name) => ActorSystem.Create(name, ConfigurationFactory.ParseString($$"""
        {{PluginId}} {
          class = "{{typeof(WriteGatedJournal).AssemblyQualifiedName}}"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig));

    /// <summary>
    /// Runs <paramref name="test"/> on an actor system of its own where a write can hang for good: this journal under
    /// <see cref="Durability"/>'s plugin id with a circuit breaker that never cuts a write short (its default, 10 s, would
    /// fail it instead), and queues whose stop timeout (a disposal's) is 1 s; then the journal answers again and the system ends.
    /// </summary>
    public static async Task OnHangingJournal(string name, Func<ActorSystem, Task> test)
    {
        var system = ActorSystem.Create(name, ConfigurationFactory.ParseString($$"""
            actorqueue.queue.stop-timeout = 1s
            {{PluginId}} {
              class = "{{typeof(WriteGatedJournal).AssemblyQualifiedName}}"
              plugin-dispatcher = "akka.actor.default-dispatcher"
              circuit-breaker.call-timeout = 1h
            }
            """).WithFallback(ActorQueueRuntime.DefaultConfig));
        try
        {
            await test(system);
        }
        finally
        {
            RejectWrites = false;
            Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>The queue <paramref name="name"/> opened on this journal, or <c>null</c> while its name is still taken.</summary>
    public static BoundedQueue<int>? Opened(ActorSystem system, string name)
    {
        try
        {
            return new BoundedQueue<int>(10, Durability, name, system: system);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The items the queue <paramref name="name"/> holds when opened again (drained, in order), once its name is free (waiting at most <paramref name="bound"/>).</summary>
    public static async Task<IReadOnlyList<int>> ReopenedItems(ActorSystem system, string name, TimeSpan bound, Action? beforeDrain = null)
    {
        BoundedQueue<int>? reopened = null;
        await Poll.UntilAsync(() => (reopened = Opened(system, name)) is not null, bound, $"the queue {name} can be opened again");
        beforeDrain?.Invoke();
        await using (reopened!)
        {
            return await reopened!.DrainAsync().WaitAsync(bound);
        }
    }

    protected override async Task<System.Collections.Immutable.IImmutableList<Exception?>> WriteMessagesAsync(
        IEnumerable<Akka.Persistence.AtomicWrite> messages, CancellationToken cancellationToken)
    {
        WriteArrived.TrySetResult();
        await Open.Task.ConfigureAwait(false);
        if (RejectWrites)
        {
            return [.. messages.Select(_ => (Exception?)new InvalidOperationException("the journal rejects this write"))];
        }

        return await base.WriteMessagesAsync(messages, cancellationToken).ConfigureAwait(false);
    }

    private static TaskCompletionSource Completed()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }
}

/// <summary>The classes using <see cref="WriteGatedJournal"/>'s static gates run one at a time.</summary>
[CollectionDefinition(WriteGatedJournal.Collection)]
public sealed class WriteGatedJournalCollection;
