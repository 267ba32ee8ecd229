using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Item = ActorQueue.Tests.Review.UnreadableItemsRound45Tests.WriteOnlyItem;

namespace ActorQueue.Tests.Review;

/// <summary>
/// What the round-46 tests of a durable queue's items it cannot read back share: queues opened again over such items,
/// on a SQLite file or on Akka's in-memory journal; a count of the calls running at once; a handler's release; the
/// counters' invariant.
/// </summary>
public abstract class UnreadableQueueTestKit : ActorQueueTestKit
{
    private DurableStore? _store;

    /// <summary>Worker and error-handler calls running now, and the most seen at once.</summary>
    private int _atOnce;

    private int _mostAtOnce;

    /// <summary>A blocking error handler's answer: it does not return until released.</summary>
    protected TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Calls running now (<see cref="Counted"/>).</summary>
    protected int AtOnce => Volatile.Read(ref _atOnce);

    /// <summary>The most calls seen running at once (<see cref="Counted"/>).</summary>
    protected int MostAtOnce => Volatile.Read(ref _mostAtOnce);

    /// <summary>What the error handlers of a test heard, in order.</summary>
    protected ConcurrentQueue<Exception> Reported { get; } = new();

    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    protected TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    private DurableStore Store => _store ??= new DurableStore(Sys);

    /// <summary>Asserts <c>Enqueued == Processed + Drained + Discarded + Size + InFlight</c>.</summary>
    protected static void AssertWhole(BoundedQueue<Item> queue)
    {
        var metrics = queue.Metrics;
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }

    /// <summary>Runs <paramref name="call"/> counted among the calls running at once.</summary>
    protected async Task Counted(Func<Task> call)
    {
        var now = Interlocked.Increment(ref _atOnce);
        for (var most = Volatile.Read(ref _mostAtOnce); now > most; most = Volatile.Read(ref _mostAtOnce))
        {
            if (Interlocked.CompareExchange(ref _mostAtOnce, now, most) == most)
            {
                break;
            }
        }

        try
        {
            await call().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _atOnce);
        }
    }

    /// <summary>An error handler that records the report in <see cref="Reported"/>, counted among the calls running at once, and does not return until <see cref="Release"/>.</summary>
    protected Task BlockingHandler(Exception error, Item? item) => Counted(() =>
    {
        Reported.Enqueue(error);
        return Release.Task;
    });

    /// <summary>The durability of a test's queue: a SQLite file, or Akka's in-memory journal.</summary>
    protected QueueDurability Durability(bool sqlite) => sqlite ? Store.Durability() : QueueDurability.InMemory;

    /// <summary>A queue (not started) opened again over <paramref name="count"/> items it cannot read, written by an earlier run.</summary>
    protected async Task<BoundedQueue<Item>> ReopenAsync(bool sqlite, string label, int count) =>
        new(10, Durability(sqlite), await PutUnreadableAsync(sqlite, label, count), system: Sys);

    /// <summary>Writes <paramref name="count"/> items to a new durable queue and closes it; returns its name: opened again, it holds items it cannot read.</summary>
    protected async Task<string> PutUnreadableAsync(bool sqlite, string label, int count)
    {
        var name = DurableStore.UniqueName(label);
        await using var first = new BoundedQueue<Item>(10, Durability(sqlite), name, system: Sys);
        await first.StartAsync().WaitAsync(Bound);
        for (var i = 0; i < count; i++)
        {
            Assert.True(await first.PutAsync(new Item(i)).WaitAsync(Bound));
        }

        await first.StopAsync().WaitAsync(Bound);
        return name;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        Release.TrySetResult();
        base.Dispose(disposing);
        if (disposing)
        {
            _store?.Dispose();
        }
    }
}
