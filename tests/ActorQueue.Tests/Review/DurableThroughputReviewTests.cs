using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The durable queue's storage operations go one at a time: a snapshot and the deletions after it never run beside a
/// journal write. On SQLite they did, and the writer that found the file taken slept 150 ms (Microsoft.Data.Sqlite's
/// retry) while every put waited: two or three such stalls in half a second of durable-1ms. Here a journal and a snapshot
/// store of the test's own (<see cref="TurnJournal"/>, <see cref="TurnSnapshotStore"/>) count the operations of one
/// queue under way at once; each step of the housekeeping stays under way until a write comes, or for
/// <see cref="TurnLog.Hold"/>, so a write sent beside it is caught.
/// </summary>
public sealed class DurableThroughputReviewTests : ActorQueueTestKit
{
    private const int Items = 120;

    private const int Producers = 4;

    /// <summary>
    /// 120 items from four producers, a snapshot every 40 events. Failed before: the save went to the snapshot store at the
    /// end of the write that made it due, its two deletions together once it was saved, and the next writes beside them
    /// (up to 7 operations under way at once). Now each step waits for the write before it and the next write for the last
    /// step: one operation at a time, and every item runs once and none is left after a reopen.
    /// </summary>
    [Fact]
    public async Task A_snapshot_and_its_deletions_never_run_beside_a_write()
    {
        var (system, log) = SystemWith(StorageFault.None, "housekeeping-alone");
        try
        {
            var ran = await RunItemsAsync(system, "housekeeping-alone");

            Assert.Equal(Enumerable.Range(0, Items), ran.Order());
            Assert.True(log.Saves >= 2, $"the test made {log.Saves} snapshot(s): it needs at least two");
            Assert.True(log.Deletions >= 2 * log.Saves - 2, $"{log.Deletions} deletions after {log.Saves} snapshots");
            Assert.True(log.MostAtOnce == 1, $"up to {log.MostAtOnce} storage operations at once: {string.Join("; ", log.Overlaps)}");
            await AssertReopensEmptyAsync(system, "housekeeping-alone");
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// The housekeeping's steps may fail; the writes go on after a failed one. A router that waited for a step's success
    /// only would hold every write after the first failure, and the puts would never be answered.
    /// </summary>
    [Theory]
    [InlineData(StorageFault.SaveFails)]
    [InlineData(StorageFault.DeletionsFail)]
    public async Task Writes_go_on_after_a_failed_housekeeping_step(StorageFault fault)
    {
        var name = "housekeeping-" + fault;
        var (system, log) = SystemWith(fault, name);
        try
        {
            var ran = await RunItemsAsync(system, name);

            Assert.Equal(Enumerable.Range(0, Items), ran.Order());
            Assert.True(log.Saves >= 2, $"the test made {log.Saves} snapshot attempt(s): it needs at least two");
            Assert.True(log.MostAtOnce == 1, $"up to {log.MostAtOnce} storage operations at once: {string.Join("; ", log.Overlaps)}");
            await AssertReopensEmptyAsync(system, name);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>What the test's snapshot store and journal fail.</summary>
    public enum StorageFault
    {
        None,
        SaveFails,
        DeletionsFail,
    }

    private static QueueDurability Durability => new() { JournalPluginId = "turn.journal", SnapshotPluginId = "turn.snapshot-store", SnapshotEvery = 40 };

    /// <summary>Puts <see cref="Items"/> items from <see cref="Producers"/> producers into a started queue with two workers; returns the items run, once the queue is joined.</summary>
    private async Task<ConcurrentBag<int>> RunItemsAsync(ActorSystem system, string name)
    {
        var ran = new ConcurrentBag<int>();
        await using var queue = new BoundedQueue<int>(Items, Durability, name, system: system);
        await Within(queue.StartAsync());
        await Within(queue.StartWorkersAsync(item =>
        {
            ran.Add(item);
            return Task.CompletedTask;
        }, numWorkers: 2));
        await Within(Task.WhenAll(Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
        {
            for (var item = p; item < Items; item += Producers)
            {
                Assert.True(await queue.PutAsync(item));
            }
        }))));
        await Within(queue.JoinAsync());
        return ran;
    }

    /// <summary>The queue opened again recovers nothing left to run: every item's end was journaled.</summary>
    private async Task AssertReopensEmptyAsync(ActorSystem system, string name)
    {
        await using var again = new BoundedQueue<int>(Items, Durability, name, system: system);
        await Within(again.StartAsync());
        Assert.Equal(0, again.Size);
        Assert.Equal(0, again.Metrics.InFlight);
    }

    private static (ActorSystem System, TurnLog Log) SystemWith(StorageFault fault, string name)
    {
        var log = TurnLog.For("actorqueue-queue-" + name, fault);
        var system = ActorSystem.Create(name, ConfigurationFactory.ParseString($$"""
            turn.journal {
              class = "{{typeof(TurnJournal).AssemblyQualifiedName}}"
              plugin-dispatcher = "akka.actor.default-dispatcher"
            }
            turn.snapshot-store {
              class = "{{typeof(TurnSnapshotStore).AssemblyQualifiedName}}"
              plugin-dispatcher = "akka.actor.default-dispatcher"
            }
            """).WithFallback(ActorQueueRuntime.DefaultConfig));
        return (system, log);
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
}
