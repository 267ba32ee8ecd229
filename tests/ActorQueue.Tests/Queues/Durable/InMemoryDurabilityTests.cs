using System.Collections.Concurrent;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>Priorities, delays and dead letters on Akka's in-memory journal, and the plain queue refusing what it does not do.</summary>
public sealed class InMemoryDurabilityTests : ActorQueueTestKit
{
    [Fact]
    public async Task The_in_memory_journal_runs_by_priority_waits_for_delayed_items_and_keeps_dead_letters()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var durability = QueueDurability.InMemory with { Clock = clock, Retry = new RetryPolicy { MaxAttempts = 1 } };
        await using var queue = new BoundedQueue<int>(10, durability, DurableStore.UniqueName("inmem"), system: Sys);
        await Within(queue.StartAsync());
        Assert.True(await Within(queue.PutAsync(1, priority: 0, notBefore: clock.GetUtcNow().AddSeconds(5))));
        Assert.True(await Within(queue.PutAsync(2, priority: 0)));
        Assert.True(await Within(queue.PutAsync(3, priority: 1)));
        Assert.True(await Within(queue.PutAsync(-1, priority: 0)));
        var order = new ConcurrentQueue<int>();
        await queue.StartWorkersAsync(item =>
        {
            order.Enqueue(item);
            return item < 0 ? throw new InvalidOperationException("negative") : Task.CompletedTask;
        }, numWorkers: 1);

        await Poll.UntilAsync(() => order.Count == 3, Dilated(TimeSpan.FromSeconds(10)), "the three due items ran");
        clock.Advance(TimeSpan.FromSeconds(5));
        await Within(queue.JoinAsync());

        Assert.Equal([3, 2, -1, 1], order);
        Assert.Equal(-1, Assert.Single(await Within(queue.DeadLettersAsync())).Item);
    }

    [Fact]
    public async Task A_queue_without_durability_refuses_a_priority_or_a_time_instead_of_ignoring_it()
    {
        await using var queue = new BoundedQueue<int>(10, system: Sys);
        await Within(queue.StartAsync());

        var error = Assert.Throws<NotSupportedException>(() => { _ = queue.PutAsync(1, priority: 2); });
        Assert.Contains("priority (2)", error.Message, StringComparison.Ordinal);
        Assert.True(await Within(queue.PutAsync(1, priority: 0)));
        var probe = CreateTestProbe();
        queue.Router.Tell(new QueueProtocol.Put(2, 7) { NotBefore = DateTimeOffset.UnixEpoch }, probe.Ref);
        Assert.Equal(7, (await probe.ExpectMsgAsync<QueueProtocol.RejectedInvalid>()).CorrelationId);
        queue.Router.Tell(new QueueProtocol.ListDeadLetters(8), probe.Ref);
        Assert.Empty((await probe.ExpectMsgAsync<QueueProtocol.DeadLetterList>()).Letters);
        Assert.Empty(await Within(queue.DeadLettersAsync()));
    }
}
