using ActorQueue.Actors;
using ActorQueue.Primitives;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 159) of the clock a queue's stop grace period is measured on. Its timers run on the actor system's
/// scheduler, a virtual one in tests (Akka's TestScheduler), but its deadline was read on <see cref="Environment.TickCount64"/>:
/// where the two clocks part, a second stop that came while stopping (a disposal) and a durable router's restart moved
/// the end of the grace period to the wrong time. And the capacity limiter's bad token counts, which named anyio's
/// <c>total_tokens</c> instead of the .NET parameter.
/// </summary>
public sealed class StopGraceClockReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// A stop with a timeout of 90 min, then 80 min later a disposal (its timeout, the configured 1 h, would end later):
    /// the earliest deadline wins, so the work in hand is cancelled at 90 min. Failed before: the worker had not been
    /// cancelled 20 s (dilated) after the virtual clock reached 91 min: the disposal's deadline, measured on the real
    /// clock (which had not moved), was the earlier one, so the grace timer was set again for an hour from the disposal,
    /// to end at 140 min. Both routers (they share <c>StopGrace</c>); the durable one on Akka's in-memory journal.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task A_disposal_while_stopping_ends_the_grace_period_at_the_earliest_deadline_on_the_schedulers_clock(bool durable) =>
        OnVirtualClock($"h159-join-{durable}", async (system, clock) =>
        {
            var (running, cancelled) = (NewSignal(), NewSignal());
            var name = DurableStore.UniqueName("h159-join");
            var queue = durable
                ? new BoundedQueue<int>(10, QueueDurability.InMemory, name, system: system)
                : new BoundedQueue<int>(10, system: system, name: name);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await WaitForCancellation(ct, cancelled);
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);

            var stop = queue.StopAsync(TimeSpan.FromMinutes(90));
            Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue)); // the grace timer is armed at 0
            clock.Advance(TimeSpan.FromMinutes(80));
            var dispose = queue.DisposeAsync().AsTask();
            Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue)); // the disposal is taken at 80 min (its own deadline: 140 min)
            await AssertCancelledAtTheStopsDeadline(queue, clock, cancelled);
            Assert.True(await Poll.CompletesWithin(Task.WhenAll(stop, dispose), Bound), "the stop and the disposal completed once the work ended");
        });

    /// <summary>
    /// A durable router restarts 80 min into a stop with a timeout of 90 min (item 2's try fails, and the router's clock
    /// throws as it reckons the retry): the next instance goes on with the 10 min left, so item 1's try is cancelled at
    /// 90 min. Failed before: it had not been cancelled 20 s (dilated) after the virtual clock reached 91 min: the
    /// deadline handed over, read on the real clock, had 90 min left, and the next instance set its timer for them, to
    /// end at 170 min. (The other way round, a restart once the stop's timeout had passed on the real clock ended the
    /// grace period at once, however little of it had passed on the scheduler's.)
    /// </summary>
    [Fact]
    public Task A_durable_router_restarted_while_stopping_keeps_the_grace_deadline_on_the_schedulers_clock() =>
        OnVirtualClock("h159-resume", async (system, clock) =>
        {
            var failing = new FailingClock();
            var durability = QueueDurability.InMemory with { Clock = failing, Retry = new RetryPolicy { MaxAttempts = 3, InitialDelay = TimeSpan.Zero, Jitter = 0 } };
            var queue = new BoundedQueue<int>(10, durability, DurableStore.UniqueName("h159-resume"), system: system);
            var (one, two, fail, cancelled) = (NewSignal(), NewSignal(), NewSignal(), NewSignal());
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (item, ct) =>
            {
                if (item == 2)
                {
                    two.TrySetResult();
                    await fail.Task;
                    throw new InvalidOperationException("item 2's try fails (test)");
                }

                one.TrySetResult();
                await WaitForCancellation(ct, cancelled);
            }, numWorkers: 2).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
            await Task.WhenAll(one.Task, two.Task).WaitAsync(Bound);

            var stop = queue.StopAsync(TimeSpan.FromMinutes(90));
            Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
            clock.Advance(TimeSpan.FromMinutes(80));
            Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
            failing.FailNext(1);
            fail.TrySetResult();
            await Poll.UntilAsync(() => failing.Failed, Bound, "the router read the failing clock");
            // Sent after the failure, a request is answered only by the next instance, once it has taken over.
            Assert.Empty(await queue.DeadLettersAsync().WaitAsync(Bound));
            Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
            await AssertCancelledAtTheStopsDeadline(queue, clock, cancelled);
            Assert.True(await Poll.CompletesWithin(stop, Bound), "the stop completed once the work ended");
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        });

    /// <summary>
    /// A bad token count names the .NET parameter and the value. Failed before: the message began
    /// "total_tokens must be" (anyio's Python name) for the constructor's <c>totalTokens</c> and the setter's <c>value</c> alike.
    /// </summary>
    [Theory]
    [InlineData(0d)]
    [InlineData(2.5d)]
    [InlineData(double.NaN)]
    [InlineData(3e9)]
    public void A_bad_token_count_names_the_dotnet_parameter_and_the_value(double tokens)
    {
        var created = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncCapacityLimiter(tokens, Sys));
        Assert.Equal("totalTokens", created.ParamName);
        Assert.StartsWith($"totalTokens must be a whole number from 1 to {int.MaxValue}, or infinity, got {tokens}", created.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("total_tokens", created.Message, StringComparison.Ordinal);

        using var limiter = new AsyncCapacityLimiter(double.PositiveInfinity, Sys);
        var set = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.TotalTokens = tokens);
        Assert.Equal("value", set.ParamName);
        Assert.StartsWith($"TotalTokens must be a whole number from 1 to {int.MaxValue}, or infinity, got {tokens}", set.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("total_tokens", set.Message, StringComparison.Ordinal);
        Assert.Equal(double.PositiveInfinity, limiter.TotalTokens);
    }

    /// <summary>
    /// From 80 min into a stop with a timeout of 90 min: the work in hand is still running at 89 min (the router has
    /// handled every timer due by then), and is cancelled once the clock passes 90 min.
    /// </summary>
    private async Task AssertCancelledAtTheStopsDeadline(BoundedQueue<int> queue, TestScheduler clock, TaskCompletionSource cancelled)
    {
        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
        Assert.False(cancelled.Task.IsCompleted, "the work was cancelled before the stop's timeout (90 min)");

        clock.Advance(TimeSpan.FromMinutes(2)); // 91 min: past the stop's deadline

        Assert.True(await Poll.CompletesWithin(cancelled.Task, Bound),
            $"the work in hand had not been cancelled {Bound.TotalSeconds} s after the virtual clock passed the stop's deadline (90 min) by a minute");
    }

    /// <summary>Waits until <paramref name="ct"/> is cancelled, then sets <paramref name="cancelled"/> and returns as cancelled.</summary>
    private static async Task WaitForCancellation(CancellationToken ct, TaskCompletionSource cancelled)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            cancelled.TrySetResult();
            throw;
        }
    }

    /// <summary>
    /// The router's status, answered after every message sent to it before (a barrier for the virtual clock's timers);
    /// a router that has stopped never answers, and the test fails saying so.
    /// </summary>
    private async Task<QueueStatus> StatusAsync(BoundedQueue<int> queue)
    {
        var status = queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance);
        Assert.True(await Poll.CompletesWithin(status, Bound), $"the router had not answered a GetStatus {Bound.TotalSeconds} s after it was sent: it has stopped");
        return (await status).State;
    }

    /// <summary>Runs <paramref name="test"/> on an actor system of its own on virtual time (Akka's TestScheduler), stop timeout 1 h.</summary>
    private static async Task OnVirtualClock(string name, Func<ActorSystem, TestScheduler, Task> test)
    {
        var system = ActorSystem.Create(name, ConfigurationFactory.ParseString("""
            akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
            actorqueue.queue.stop-timeout = 1h
            """).WithFallback(ActorQueueRuntime.DefaultConfig));
        try
        {
            await test(system, (TestScheduler)system.Scheduler);
        }
        finally
        {
            await system.Terminate();
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
