using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// A durable queue's delayed item runs at its time whatever its timer does: a due tick that came early, handled while
/// the item fell due (between the router's hand-out, which found it not due, and its setting the next wake), still
/// wakes the router for the item when a worker is free.
/// </summary>
public sealed class DurableDueWakeTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;

    public DurableDueWakeTests() => _store = new DurableStore(Sys);

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }

    [Fact]
    public async Task An_item_that_falls_due_while_its_early_tick_is_handled_runs_without_another_message()
    {
        var clock = new EarlyTimersClock(TimeSpan.FromMilliseconds(1));
        await using var queue = new BoundedQueue<int>(100, _store.Durability(clock), DurableStore.UniqueName("due-wake"), system: Sys);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(item =>
        {
            ran.TrySetResult(item);
            return Task.CompletedTask;
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(1, priority: 0, notBefore: clock.GetUtcNow().AddMinutes(1))));
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<QueueProtocol.Status>(); // the router set its wake for the item

        // Its tick, set for a minute, comes a millisecond early; the router's hand-out reads the clock half a millisecond
        // before the item's time, and the clock reaches it right after that read.
        clock.MoveAfterNextUtcRead(TimeSpan.FromMilliseconds(0.5));
        clock.Fake.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromMilliseconds(0.5));

        Assert.Equal(1, await Within(ran.Task));
    }
}
