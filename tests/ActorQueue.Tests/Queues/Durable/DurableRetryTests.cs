using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>Delays, retries with backoff and dead letters on a fake clock: nothing runs before its time, and the times survive a restart.</summary>
public sealed class DurableRetryTests : ActorQueueTestKit, IDisposable
{
    private static readonly RetryPolicy Backoff = new() { MaxAttempts = 3, InitialDelay = TimeSpan.FromSeconds(10), Multiplier = 2, Jitter = 0 };

    private readonly DurableStore _store;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public DurableRetryTests()
    {
        _store = new DurableStore(Sys);
    }

    private BoundedQueue<int> Open(string name) => new(100, _store.Durability(_clock, Backoff), name, system: Sys);

    /// <summary>The queue's status after every message sent before it, including a due tick the clock just sent.</summary>
    private async Task<QueueProtocol.Status> StatusOf(BoundedQueue<int> queue)
    {
        var probe = CreateTestProbe();
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<QueueProtocol.Status>();
    }

    [Fact]
    public async Task A_delayed_item_waits_for_its_time_and_its_time_survives_a_restart()
    {
        var name = DurableStore.UniqueName("delayed");
        await using (var first = Open(name))
        {
            await Within(first.StartAsync());
            Assert.True(await Within(first.PutAsync(1, priority: 0, notBefore: _clock.GetUtcNow().AddMinutes(1))));
        }

        await using var second = Open(name);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(second.StartAsync());
        await second.StartWorkersAsync(item =>
        {
            ran.TrySetResult(item);
            return Task.CompletedTask;
        }, numWorkers: 1);

        _clock.Advance(TimeSpan.FromSeconds(59));
        var early = await StatusOf(second);
        Assert.Equal((1, 0L), (early.Size, early.Metrics.InFlight));
        Assert.False(ran.Task.IsCompleted);

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await Within(ran.Task));
        await Within(second.JoinAsync());
    }

    [Fact]
    public async Task A_failing_item_is_retried_after_its_backoff_then_dead_lettered_with_its_last_error()
    {
        await using var queue = Open(DurableStore.UniqueName("retry"));
        var tries = 0;
        var tried = new SemaphoreSlim(0);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(_ =>
        {
            var attempt = Interlocked.Increment(ref tries);
            tried.Release();
            throw new InvalidOperationException($"boom {attempt}");
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(7)));

        Assert.True(await tried.WaitAsync(Dilated(TimeSpan.FromSeconds(10))));
        await AssertWaitsAsync(queue, TimeSpan.FromSeconds(10));
        Assert.True(await tried.WaitAsync(Dilated(TimeSpan.FromSeconds(10))));
        await AssertWaitsAsync(queue, TimeSpan.FromSeconds(20));
        Assert.True(await tried.WaitAsync(Dilated(TimeSpan.FromSeconds(10))));

        var dead = await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Dilated(TimeSpan.FromSeconds(10)));
        Assert.Equal(new DeadLetter<int>(dead[0].Id, 7, 3, "System.InvalidOperationException: boom 3"), dead[0]);
        Assert.Equal(3, tries);
        Assert.Equal(new QueueMetrics(1, 1, 1, 0), queue.Metrics);
        await Within(queue.JoinAsync());
    }

    [Fact]
    public async Task Dead_letters_survive_a_restart_and_can_be_requeued_or_purged()
    {
        var name = DurableStore.UniqueName("dead");
        var failing = true;
        var done = new List<int>();
        Task Work(int item)
        {
            if (Volatile.Read(ref failing))
            {
                throw new InvalidOperationException("no");
            }

            lock (done)
            {
                done.Add(item);
            }

            return Task.CompletedTask;
        }

        await using (var first = new BoundedQueue<int>(100, _store.Durability(_clock, Backoff with { MaxAttempts = 1 }), name, system: Sys))
        {
            await Within(first.StartAsync());
            await first.StartWorkersAsync(Work, numWorkers: 1);
            await Within(first.PutAsync(1));
            await Within(first.PutAsync(2));
            await Poll.ValueAsync(() => first.DeadLettersAsync(), letters => letters.Count == 2, Dilated(TimeSpan.FromSeconds(10)));
        }

        await using var second = Open(name);
        await Within(second.StartAsync());
        var dead = await Within(second.DeadLettersAsync());
        Assert.Equal([1, 2], dead.Select(letter => letter.Item));
        Assert.All(dead, letter => Assert.Equal("System.InvalidOperationException: no", letter.LastError));

        Volatile.Write(ref failing, false);
        await second.StartWorkersAsync(Work, numWorkers: 1);
        Assert.Equal(1, await Within(second.RequeueDeadLettersAsync([dead[0].Id, 12345])));
        await Within(second.JoinAsync());
        Assert.Equal(1, await Within(second.PurgeDeadLettersAsync()));

        Assert.Equal([1], done);
        Assert.Empty(await Within(second.DeadLettersAsync()));
    }

    [Fact]
    public async Task An_actor_lists_requeues_and_purges_dead_letters()
    {
        await using var queue = new BoundedQueue<int>(100, _store.Durability(_clock, Backoff with { MaxAttempts = 1 }), DurableStore.UniqueName("actor-dead"), system: Sys);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(_ => throw new InvalidOperationException("no"), numWorkers: 1);
        await Within(queue.PutAsync(5));
        await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Dilated(TimeSpan.FromSeconds(10)));
        var probe = CreateTestProbe();

        queue.Router.Tell(new QueueProtocol.ListDeadLetters(1), probe.Ref);
        var list = await probe.ExpectMsgAsync<QueueProtocol.DeadLetterList>();
        var letter = Assert.IsType<DeadLetter<int>>(Assert.Single(list.Letters));
        queue.Router.Tell(new QueueProtocol.PurgeDeadLetters(2, [letter.Id]), probe.Ref);
        await probe.ExpectMsgAsync(new QueueProtocol.DeadLettersChanged(2, 1));
        queue.Router.Tell(new QueueProtocol.RequeueDeadLetters(3), probe.Ref);
        await probe.ExpectMsgAsync(new QueueProtocol.DeadLettersChanged(3, 0));

        Assert.Equal(5, letter.Item);
    }

    /// <summary>The item waits for its retry: not before <paramref name="backoff"/> has passed on the clock, and at once after.</summary>
    private async Task AssertWaitsAsync(BoundedQueue<int> queue, TimeSpan backoff)
    {
        await Poll.ValueAsync(() => StatusOf(queue), status => status.Size == 1 && status.Metrics.InFlight == 0, Dilated(TimeSpan.FromSeconds(10)));
        _clock.Advance(backoff - TimeSpan.FromMilliseconds(1));
        var before = await StatusOf(queue);
        Assert.Equal((1, 0L), (before.Size, before.Metrics.InFlight));
        _clock.Advance(TimeSpan.FromMilliseconds(1));
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
