using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The durable queue's storage operations go one at a time (<see cref="StorageTurnReviewTests"/>): 120 items from four
/// producers, two workers; every item runs once and none is left after a reopen. Failed before: the save went to the
/// snapshot store at the end of the write that made it due, its two deletions together once it was saved, and the next
/// writes beside them (up to 7 operations under way at once; 2 in the failure theories). On SQLite: two or three stalls
/// of 150 ms in half a second of durable-1ms.
/// </summary>
public sealed class DurableThroughputReviewTests : StorageTurnReviewTests
{
    private const int Items = 120;

    private const int Producers = 4;

    private static QueueDurability Durability => new() { JournalPluginId = TurnStorage.Journal, SnapshotPluginId = TurnStorage.SnapshotStore, SnapshotEvery = 40 };

    /// <summary>Puts <see cref="Items"/> items from <see cref="Producers"/> producers into a started queue with two workers; every item runs once.</summary>
    protected override async Task RunItemsAsync(ActorSystem system, string name)
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
        Assert.Equal(Enumerable.Range(0, Items), ran.Order());
    }

    /// <summary>The queue opened again recovers nothing left to run: every item's end was journaled.</summary>
    protected override async Task AssertReopensAsync(ActorSystem system, string name)
    {
        await using var again = new BoundedQueue<int>(Items, Durability, name, system: system);
        await Within(again.StartAsync());
        Assert.Equal(0, again.Size);
        Assert.Equal(0, again.Metrics.InFlight);
    }

    /// <inheritdoc />
    protected override string PersistenceId(string name) => "actorqueue-queue-" + name;
}
