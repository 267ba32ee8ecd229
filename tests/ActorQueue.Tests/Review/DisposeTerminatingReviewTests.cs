using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Dispatch;

using static ActorQueue.Tests.Runtime.QuietSystems;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A dispose that races the actor system's termination completes. Akka gives a message sent as its actor stops no
/// promise: the sender may read the actor's mailbox just before the stop swaps it for the dead-letter one, and enqueue
/// after the stop drained it, so the message is neither run nor dead-lettered. A dispose whose completion rode only on
/// its stop message then never completed (CI: DisposeAnyStateReviewTests, PartitionedModelApiLimiter, 20 s). The tests
/// force that ordering: the stopped actor's cell gets its old, closed and drained mailbox back before the dispose.
/// The guard on each await only turns a hang into a failure; it is not a timing assertion.
/// </summary>
public sealed class DisposeTerminatingReviewTests
{
    /// <summary>A facade with one slot held and a caller waiting behind it: the facade, its actor and the waiter's task.</summary>
    private static readonly Dictionary<string, Func<ActorSystem, Task<(IAsyncDisposable Facade, IActorRef Actor, Task Waiter)>>> Waiting = new()
    {
        ["ConcurrencyLimiter"] = async system =>
        {
            var limiter = new ConcurrencyLimiter(OneSlot, system: system);
            _ = await limiter.AcquireAsync();
            var waiter = limiter.AcquireAsync().AsTask();
            await Poll.UntilAsync(() => limiter.WaitingCount == 1, HangGuard, "the caller waits");
            return (limiter, OwnedActorOf(limiter), waiter);
        },
        ["ModelApiLimiter"] = async system =>
        {
            var limiter = new ModelApiLimiter(OneCall, system: system);
            _ = await limiter.AcquireAsync(1);
            var waiter = limiter.AcquireAsync(1).AsTask();
            await Poll.UntilAsync(() => limiter.WaitingCount == 1, HangGuard, "the caller waits");
            return (limiter, OwnedActorOf(limiter), waiter);
        },
        ["PartitionedConcurrencyLimiter"] = async system =>
        {
            var limiter = new PartitionedConcurrencyLimiter<string>(OneSlot, TimeSpan.FromMinutes(5), system: system);
            _ = await limiter.AcquireAsync("k");
            var waiter = limiter.AcquireAsync("k").AsTask();
            await Poll.ValueAsync(() => limiter.GetStatisticsAsync(), s => s.TryGetValue("k", out var p) && p.Waiting == 1, HangGuard);
            return (limiter, ((IPartitionedLimiter<string>)limiter).Partitions.Actor, waiter);
        },
        ["PartitionedModelApiLimiter"] = async system =>
        {
            var limiter = new PartitionedModelApiLimiter<string>(OneCall, TimeSpan.FromMinutes(5), system: system);
            _ = await limiter.AcquireAsync("k", 1);
            var waiter = limiter.AcquireAsync("k", 1).AsTask();
            await Poll.UntilAsync(() => limiter.GetStatistics().TryGetValue("k", out var s) && s.Waiting == 1, HangGuard, "the caller waits");
            return (limiter, ((IPartitionedLimiter<string>)limiter).Partitions.Actor, waiter);
        },
    };

    public static TheoryData<string> Kinds => new(Waiting.Keys);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_dispose_whose_stop_message_is_lost_to_the_terminating_system_completes(string kind)
    {
        var system = New("dispose-terminating");
        var (facade, actor, waiter) = await Waiting[kind](system).WaitAsync(HangGuard);
        var cell = (ActorCell)((ActorRefWithCell)actor).Underlying;
        var mailbox = Assert.IsAssignableFrom<Mailbox>(cell.Mailbox);

        await system.Terminate().WaitAsync(HangGuard);
        Assert.NotSame(mailbox, cell.Mailbox); // the stop swapped in the dead-letter mailbox and drained this one
        SwapMailbox(cell, mailbox); // as if the disposer read the mailbox just before that swap

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter.WaitAsync(HangGuard));
    }

    /// <summary>
    /// A limiter's stop disposes its timers before it fails its waiters; a timer whose <c>Dispose</c> throws (the
    /// application's <see cref="TimeProvider"/>) must cost neither the waiters' answers nor the dispose's completion.
    /// </summary>
    [Theory]
    [InlineData("ConcurrencyLimiter")]
    [InlineData("PartitionedConcurrencyLimiter")]
    public async Task A_dispose_completes_when_a_timers_Dispose_throws(string kind)
    {
        var system = New("dispose-timer-throws");
        try
        {
            var limit = new ConcurrencyLimit(1) { WaitTimeout = TimeSpan.FromHours(1), TimeProvider = new DisposeThrowingTime() };
            IAsyncDisposable facade;
            Task waiter;
            if (kind == "ConcurrencyLimiter")
            {
                var limiter = new ConcurrencyLimiter(limit, system: system);
                _ = await limiter.AcquireAsync();
                waiter = limiter.AcquireAsync().AsTask();
                await Poll.UntilAsync(() => limiter.WaitingCount == 1, HangGuard, "the caller waits");
                facade = limiter;
            }
            else
            {
                var limiter = new PartitionedConcurrencyLimiter<string>(limit, TimeSpan.FromMinutes(5), system: system);
                _ = await limiter.AcquireAsync("k");
                waiter = limiter.AcquireAsync("k").AsTask();
                await Poll.ValueAsync(() => limiter.GetStatisticsAsync(), s => s.TryGetValue("k", out var p) && p.Waiting == 1, HangGuard);
                facade = limiter;
            }

            await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter.WaitAsync(HangGuard));
        }
        finally
        {
            await system.Terminate().WaitAsync(HangGuard);
        }
    }

    /// <summary>The system clock, whose timers throw from <c>Dispose</c>.</summary>
    private sealed class DisposeThrowingTime : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new Throwing(System.CreateTimer(callback, state, dueTime, period));

        private sealed class Throwing(ITimer timer) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => timer.Change(dueTime, period);

            public void Dispose()
            {
                timer.Dispose();
                throw new InvalidOperationException("timer dispose fault");
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return default;
            }
        }
    }

    /// <summary>The gatekeeper actor a limiter owns (its private <c>_gatekeeper</c>).</summary>
    private static IActorRef OwnedActorOf(object limiter) =>
        ((OwnedActor<DisposeGatekeeper>)limiter.GetType().GetField("_gatekeeper", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(limiter)!).Actor;

    /// <summary>Puts <paramref name="mailbox"/> back in <paramref name="cell"/> (Akka's own swap, not public).</summary>
    private static void SwapMailbox(ActorCell cell, Mailbox mailbox) =>
        typeof(ActorCell).GetMethod("SwapMailbox", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.Invoke(cell, [mailbox]);
}
