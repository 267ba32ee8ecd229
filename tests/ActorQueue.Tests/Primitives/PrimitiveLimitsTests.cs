using ActorQueue.Primitives;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Primitives;

/// <summary>The primitives at the edges of their arithmetic and of their lifetime: refused by name, never wrapped.</summary>
public sealed class PrimitiveLimitsTests : ActorQueueTestKit
{
    [Fact]
    public async Task Releasing_a_full_semaphore_throws_SemaphoreFullException_naming_the_value()
    {
        using var semaphore = new AsyncSemaphore(int.MaxValue, Sys);

        var ex = Assert.Throws<SemaphoreFullException>(semaphore.Release);

        Assert.Contains("2147483647", ex.Message);
        Assert.Equal(int.MaxValue, semaphore.Value);
        await Within(semaphore.AcquireAsync()); // the semaphore still works: nothing wrapped to a negative value
        Assert.Equal(int.MaxValue - 1, semaphore.Value);
    }

    [Fact]
    public async Task A_holder_gives_its_permit_back_to_a_full_semaphore_and_the_next_release_is_refused()
    {
        using var semaphore = new AsyncSemaphore(int.MaxValue, Sys);
        await Within(semaphore.AcquireAsync());

        semaphore.Release(); // at once after the grant: the grant is counted before the caller resumes

        Assert.Equal(int.MaxValue, semaphore.Value);
        Assert.Throws<SemaphoreFullException>(semaphore.Release);
    }

    [Fact]
    public async Task Concurrent_releases_near_the_maximum_add_exactly_the_room_left()
    {
        using var semaphore = new AsyncSemaphore(int.MaxValue - 10, Sys);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releases = Enumerable.Range(0, 40).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            try
            {
                semaphore.Release();
                return true;
            }
            catch (SemaphoreFullException)
            {
                return false;
            }
        })).ToArray();

        start.SetResult();
        var succeeded = (await Within(Task.WhenAll(releases))).Count(released => released);

        Assert.Equal(10, succeeded);
        Assert.Equal(int.MaxValue, semaphore.Value);
        await Within(semaphore.AcquireAsync());
    }

    [Fact]
    public async Task An_actor_release_that_would_pass_the_maximum_is_refused_naming_the_value()
    {
        using var semaphore = new AsyncSemaphore(int.MaxValue, Sys);
        var actor = CreateTestProbe();
        semaphore.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        semaphore.Release(); // someone else fills the semaphore up again

        semaphore.Coordinator.Tell(new Release(2), actor.Ref);

        var refused = await actor.ExpectMsgAsync<Refused>();
        Assert.Equal(2, refused.RequestId);
        Assert.Contains("2147483647", refused.Reason);
        Assert.Equal(int.MaxValue, semaphore.Value);
    }

    [Fact]
    public void A_condition_over_a_disposed_lock_is_refused()
    {
        var @lock = new AsyncLock(Sys);
        @lock.Dispose();

        var ex = Assert.Throws<ObjectDisposedException>(() => new AsyncCondition(@lock));

        Assert.Equal(nameof(AsyncLock), ex.ObjectName);
        Assert.Contains("lock", ex.Message);
    }

    [Fact]
    public async Task Waiting_and_notifying_after_the_lock_was_disposed_throw_ObjectDisposedException()
    {
        var @lock = new AsyncLock(Sys);
        var condition = new AsyncCondition(@lock);
        await @lock.AcquireAsync();
        await @lock.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => { _ = condition.WaitAsync(); });
        Assert.Throws<ObjectDisposedException>(() => { _ = condition.NotifyAsync(); });
        Assert.Throws<ObjectDisposedException>(() => { _ = condition.NotifyAllAsync(); });
    }

    [Fact]
    public async Task Notifying_zero_waiters_is_rejected_naming_the_parameter_and_value()
    {
        await using var condition = new AsyncCondition(system: Sys);
        await condition.AcquireAsync();

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = condition.NotifyAsync(0); });

        Assert.Equal("n", ex.ParamName);
        Assert.Equal(0, ex.ActualValue);
        condition.Release();
    }
}
