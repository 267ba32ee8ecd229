using System.Collections.Concurrent;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;

namespace ActorQueue.Tests.Review;

// A journal and a snapshot store that count one persistence id's storage operations under way at once: shared by
// DurableThroughputReviewTests (the local durable queue) and ClusterJournalHousekeepingReviewTests (the cluster's
// durable distributed queue's journal).

/// <summary>The test's plugins (<c>turn.journal</c>, <c>turn.snapshot-store</c>) over ActorQueue's configuration.</summary>
public static class TurnStorage
{
    public const string Journal = "turn.journal";

    public const string SnapshotStore = "turn.snapshot-store";

    /// <summary>A system configuration with the test's journal and snapshot store.</summary>
    public static Config Config => ConfigurationFactory.ParseString($$"""
        turn.journal {
          class = "{{typeof(TurnJournal).AssemblyQualifiedName}}"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        turn.snapshot-store {
          class = "{{typeof(TurnSnapshotStore).AssemblyQualifiedName}}"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig);
}

/// <summary>
/// A persistent queue's storage operations go one at a time: a snapshot and the deletions after it never run beside a
/// journal write. On SQLite they did, and the writer that found the file taken slept 150 ms (Microsoft.Data.Sqlite's
/// retry) while every put waited. A subject (a durable queue, the cluster's distributed-queue journal) runs its items in a
/// system whose journal and snapshot store (<see cref="TurnJournal"/>, <see cref="TurnSnapshotStore"/>) count its
/// operations under way at once; each step of the housekeeping stays under way until a write comes, or for
/// <see cref="TurnLog.Hold"/>, so a write sent beside it is caught.
/// </summary>
public abstract class StorageTurnReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// The subject's items, a snapshot every 40 events: each step waits for the write before it and the next write for
    /// the last step — one operation at a time, over at least two snapshots and their deletions — and nothing is lost.
    /// </summary>
    [Fact]
    public Task A_snapshot_and_its_deletions_never_run_beside_a_write() => RunAsync(StorageFault.None, "alone");

    /// <summary>
    /// The housekeeping's steps may fail; the writes go on after a failed one. A subject that waited for a step's success
    /// only would hold every write after the first failure, and the puts would never be answered.
    /// </summary>
    [Theory]
    [InlineData(StorageFault.SaveFails)]
    [InlineData(StorageFault.DeletionsFail)]
    public Task Writes_go_on_after_a_failed_housekeeping_step(StorageFault fault) => RunAsync(fault, fault.ToString());

    /// <summary>The subject's persistence id for the queue <paramref name="name"/>.</summary>
    protected abstract string PersistenceId(string name);

    /// <summary>Runs the subject's items in <paramref name="system"/> and asserts what it ran.</summary>
    protected abstract Task RunItemsAsync(ActorSystem system, string name);

    /// <summary>Opens the subject again and asserts what it recovers.</summary>
    protected abstract Task AssertReopensAsync(ActorSystem system, string name);

    private async Task RunAsync(StorageFault fault, string suffix)
    {
        var name = GetType().Name + "-" + suffix;
        var log = TurnLog.For(PersistenceId(name), fault);
        var system = ActorSystem.Create(name, TurnStorage.Config);
        try
        {
            await RunItemsAsync(system, name);
            log.AssertOneAtATime(deletions: fault == StorageFault.None);
            await AssertReopensAsync(system, name);
        }
        finally
        {
            await system.Terminate();
        }
    }
}

/// <summary>What the test's snapshot store and journal fail.</summary>
public enum StorageFault
{
    None,
    SaveFails,
    DeletionsFail,
}

/// <summary>
/// The storage operations of one persistence id: how many were under way at once, at most, and which overlapped. A
/// step of the housekeeping stays under way until a write arrives or <see cref="Hold"/> has passed: a write sent beside
/// it is then caught, however quick the step would have been.
/// </summary>
public sealed class TurnLog
{
    public static readonly TimeSpan Hold = TimeSpan.FromMilliseconds(100);

    private static readonly ConcurrentDictionary<string, TurnLog> Logs = new();

    private readonly Lock _gate = new();

    private int _underWay;

    private TaskCompletionSource _writeArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TurnLog(StorageFault fault) => Fault = fault;

    public StorageFault Fault { get; }

    public int MostAtOnce { get; private set; }

    public int Saves { get; private set; }

    public int Deletions { get; private set; }

    public ConcurrentQueue<string> Overlaps { get; } = new();

    public static TurnLog For(string persistenceId, StorageFault fault) => Logs[persistenceId] = new TurnLog(fault);

    public static TurnLog? Of(string persistenceId) => Logs.GetValueOrDefault(persistenceId);

    /// <summary>
    /// Asserts one storage operation at a time, over at least two snapshots (attempts: a failing store's count too), and
    /// when <paramref name="deletions"/> the two deletions after each but the last (they may still be under way).
    /// </summary>
    public void AssertOneAtATime(bool deletions)
    {
        Assert.True(MostAtOnce == 1, $"up to {MostAtOnce} storage operations at once: {string.Join("; ", Overlaps.Distinct())}");
        Assert.True(Saves >= 2, $"the test made {Saves} snapshot attempt(s): it needs at least two");
        Assert.True(!deletions || Deletions >= 2 * Saves - 2, $"{Deletions} deletions after {Saves} snapshots");
    }

    /// <summary>A journal write: under way while <paramref name="write"/> runs.</summary>
    public async Task<T> WriteAsync<T>(Func<Task<T>> write)
    {
        TaskCompletionSource arrived;
        lock (_gate)
        {
            arrived = _writeArrived;
            _writeArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        Enter("write");
        arrived.TrySetResult();
        try
        {
            return await write();
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>A step of the housekeeping: under way until a write arrives or <see cref="Hold"/> has passed, then <paramref name="step"/>.</summary>
    public async Task StepAsync(string what, bool fails, Func<Task> step)
    {
        Task arrived;
        lock (_gate)
        {
            arrived = _writeArrived.Task;
            Saves += what == "save" ? 1 : 0;
            Deletions += what == "save" ? 0 : 1;
        }

        Enter(what);
        try
        {
            await Task.WhenAny(arrived, Task.Delay(Hold));
            if (fails)
            {
                throw new InvalidOperationException($"the test's storage fails this {what}");
            }

            await step();
        }
        finally
        {
            Exit();
        }
    }

    private void Enter(string what)
    {
        lock (_gate)
        {
            _underWay++;
            MostAtOnce = Math.Max(MostAtOnce, _underWay);
            if (_underWay > 1)
            {
                Overlaps.Enqueue($"{what} with {_underWay - 1} other(s) under way");
            }
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            _underWay--;
        }
    }
}

/// <summary>Akka's in-memory journal, its writes and deletions counted in the queue's <see cref="TurnLog"/>.</summary>
public sealed class TurnJournal : Akka.Persistence.Journal.MemoryJournal
{
    protected override Task<System.Collections.Immutable.IImmutableList<Exception?>> WriteMessagesAsync(
        IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToList();
        return TurnLog.Of(writes[0].PersistenceId) is { } log
            ? log.WriteAsync(() => base.WriteMessagesAsync(writes, cancellationToken))
            : base.WriteMessagesAsync(writes, cancellationToken);
    }

    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken) =>
        TurnLog.Of(persistenceId) is { } log
            ? log.StepAsync("event deletion", log.Fault == StorageFault.DeletionsFail, () => base.DeleteMessagesToAsync(persistenceId, toSequenceNr, cancellationToken))
            : base.DeleteMessagesToAsync(persistenceId, toSequenceNr, cancellationToken);
}

/// <summary>Akka's in-memory snapshot store, its saves and deletions counted in the queue's <see cref="TurnLog"/>.</summary>
public sealed class TurnSnapshotStore : Akka.Persistence.Snapshot.MemorySnapshotStore
{
    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken = default) =>
        TurnLog.Of(metadata.PersistenceId) is { } log
            ? log.StepAsync("save", log.Fault == StorageFault.SaveFails, () => base.SaveAsync(metadata, snapshot, cancellationToken))
            : base.SaveAsync(metadata, snapshot, cancellationToken);

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken = default) =>
        TurnLog.Of(persistenceId) is { } log
            ? log.StepAsync("snapshot deletion", log.Fault == StorageFault.DeletionsFail, () => base.DeleteAsync(persistenceId, criteria, cancellationToken))
            : base.DeleteAsync(persistenceId, criteria, cancellationToken);
}
