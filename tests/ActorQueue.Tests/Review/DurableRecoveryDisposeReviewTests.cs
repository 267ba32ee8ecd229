using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Serilog;
using Serilog.Events;

namespace ActorQueue.Tests.Review;

using ReplayGatedJournal = ActorQueue.Tests.Queues.Durable.ReplayGateJournal<DurableRecoveryDisposeReviewTests>;

/// <summary>
/// Review (helper 149) of a durable queue's disposal bound — twice its stop timeout from the call, whatever the journal
/// does — where the router is not yet (or no longer) in its lifecycle's hands: while it recovers from a journal whose
/// replay does not answer (<see cref="ReplayGatedJournal"/>), and after a restart while a disposal waits for a worker
/// that ignores its token. On virtual time (Akka's TestScheduler), stop timeout 1 h, and Akka's own recovery timeout
/// (<c>recovery-event-timeout</c>) set far past the bound, so only the router's bound can end the wait.
/// </summary>
public sealed class DurableRecoveryDisposeReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// A queue opened again on a journal whose replay never answers is disposed while it recovers, with a put and a start
    /// waiting for the recovery. Failed before: DisposeAsync had not completed 60 s (the dilated bound) after the clock
    /// reached twice the stop timeout from the call: every message, the disposal too, waited in Akka's stash for the
    /// recovery, which only Akka's recovery timeout ends (30 s by default, 100 h here). Expected: the disposal completes
    /// at its bound; the put fails saying its item was not stored as the queue was disposed while recovering, the start
    /// fails as a storage error, a warning counts the refused put; and once the journal answers, the queue opened again
    /// holds the item stored before, and not the refused one.
    /// </summary>
    [Fact]
    public Task A_disposal_while_the_journal_never_finishes_the_recovery_completes_within_its_bound_and_answers_every_caller() =>
        OnVirtualClock("h149-recovery-hang", async (system, clock) =>
        {
            var name = DurableStore.UniqueName("h149-recovery");
            await using (var first = new BoundedQueue<int>(10, ReplayGatedJournal.Durability, name, system: system))
            {
                await first.StartAsync().WaitAsync(Bound);
                Assert.True(await first.PutAsync(1).WaitAsync(Bound));
            }

            var logs = new CapturingSink();
            ReplayGatedJournal.Close();
            var queue = new BoundedQueue<int>(10, ReplayGatedJournal.Durability, name, logger: Logger(logs), system: system);
            await ReplayGatedJournal.ReplayArrived.Task.WaitAsync(Bound); // the replay is at the journal, and stays there
            var start = queue.StartAsync();
            var put = queue.PutAsync(2);

            await DisposeAtBound(queue, clock, "the journal not finishing the recovery");
            await NotStored(put);
            await Assert.ThrowsAsync<QueueStorageException>(() => start.WaitAsync(Bound));
            WarnedOfRefusedPuts(logs, 1);
            Assert.Equal([1], await ReplayGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// The disposal's 2× across a restart: two workers ignore their tokens; the disposal's grace period ends at 1 h (the
    /// tokens are cancelled, and ignored), and at 1 h 30 min the router fails on its thread (its clock throws as it
    /// times the retry of a try's failure) and restarts, taking the stop over. Failed before: DisposeAsync had not
    /// completed 60 s (the dilated bound) after the clock reached twice the stop timeout (2 h) from the call: the restart
    /// armed the stop's timers afresh (the grace period's end, then the stop timeout again: 3 h 30 min here, as the
    /// grace period's deadline is kept on the machine's clock; 2 h 30 min on it). Expected: the disposal completes at
    /// its bound, leaving the worker behind, and the queue opened again holds both items (neither end was journaled).
    /// </summary>
    [Fact]
    public Task A_disposal_across_a_restart_after_its_grace_period_completes_within_twice_its_stop_timeout() =>
        OnVirtualClock("h149-restart-stretch", async (system, clock) =>
        {
            var failing = new FailingClock();
            var hold = NewSignal();
            try
            {
                var name = DurableStore.UniqueName("h149-restart");
                var durability = ReplayGatedJournal.Durability with { Clock = failing, Retry = new RetryPolicy { MaxAttempts = 3, InitialDelay = TimeSpan.Zero, Jitter = 0 } };
                var queue = new BoundedQueue<int>(10, durability, name, system: system);
                await queue.StartAsync().WaitAsync(Bound);
                var running = 0;
                var bothRunning = NewSignal();
                await queue.StartWorkersAsync((_, _) =>
                {
                    if (Interlocked.Increment(ref running) == 2)
                    {
                        bothRunning.TrySetResult();
                    }

                    return hold.Task; // never looks at its token
                }, numWorkers: 2).WaitAsync(Bound);
                Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
                Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
                await bothRunning.Task.WaitAsync(Bound);

                var dispose = queue.DisposeAsync().AsTask();
                Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
                clock.Advance(TimeSpan.FromHours(1)); // the grace period ends: the tokens are cancelled, and ignored
                await StatusAsync(queue);
                clock.Advance(TimeSpan.FromMinutes(30));
                failing.FailNext(1);
                // Item 2's try fails (as a worker's end the router cannot time a retry for): the router restarts.
                queue.Router.Tell(new DurableItemDone(2, 1, new InvalidOperationException("the try fails (review test)"), Cancelled: false));
                await Poll.UntilAsync(() => failing.Failed, Bound, "the router has failed");
                Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue)); // the next instance took the stop over
                Assert.False(dispose.IsCompleted, "the disposal completed when the router restarted, before its bound");
                clock.Advance(TimeSpan.FromMinutes(30));

                Assert.True(await Poll.CompletesWithin(dispose, Bound),
                    $"DisposeAsync had not completed {Bound.TotalSeconds} s after the clock reached twice the stop timeout (2 h) from the call, the router having restarted after its grace period");
                Assert.Equal([1, 2], await ReplayGatedJournal.ReopenedItems(system, name, Bound));
            }
            finally
            {
                hold.TrySetResult();
            }
        });

    /// <summary>
    /// A processing queue restarts (its clock throws as a getter comes) and its recovery then hangs at the journal; a put
    /// from the facade, one from an actor, and the disposal come meanwhile. Failed before: DisposeAsync had not completed
    /// 60 s after the clock reached twice the stop timeout from the call (everything waited in Akka's stash for the
    /// recovery). Expected: the disposal completes at its bound; the facade's put fails saying its item was not stored,
    /// the actor hears the same, the getter the restart handed over fails as disposed, a warning counts the two puts; and
    /// once the journal answers, the queue opened again holds the item stored before, not the refused ones.
    /// </summary>
    [Fact]
    public Task Callers_waiting_for_a_restarted_router_whose_recovery_hangs_are_answered_at_the_disposals_bound() =>
        OnVirtualClock("h149-restart-recovery", async (system, clock) =>
        {
            var failing = new FailingClock();
            var name = DurableStore.UniqueName("h149-restart-recovery");
            var logs = new CapturingSink();
            var queue = new BoundedQueue<int>(10, ReplayGatedJournal.Durability with { Clock = failing }, name, logger: Logger(logs), system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));

            ReplayGatedJournal.Close();
            failing.FailNext(1);
            var get = queue.GetAsync(); // the router reads the clock to hand item 1 out, fails, restarts, and recovers
            await ReplayGatedJournal.ReplayArrived.Task.WaitAsync(Bound); // ... from a journal that does not answer
            var put = queue.PutAsync(2);
            var actor = CreateTestProbe(system);
            queue.Router.Tell(new QueueProtocol.Put(3, CorrelationId: 7), actor.Ref);

            await DisposeAtBound(queue, clock, "the restarted router not recovering");
            await NotStored(put);
            var told = await actor.ExpectMsgAsync<QueueProtocol.RejectedInvalid>(Bound);
            Assert.Equal(7, told.CorrelationId);
            Assert.Contains("not stored", told.Reason, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => get.WaitAsync(Bound));
            WarnedOfRefusedPuts(logs, 2);
            Assert.Equal([1], await ReplayGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// What the router keeps while it recovers (its own stash, now, not Akka's) is handed back in order once the journal
    /// answers: a processing queue restarts, its recovery waits at the journal while three puts come, then the journal
    /// answers. Expected: every put is accepted, and the items come out in the order they were put. Guards the hand-back:
    /// without it the puts never complete; handed back out of order, the items come out of order.
    /// </summary>
    [Fact]
    public Task Messages_kept_while_recovering_are_taken_in_order_once_the_recovery_ends() =>
        OnVirtualClock("h149-recovery-order", async (system, _) =>
        {
            var failing = new FailingClock();
            await using var queue = new BoundedQueue<int>(10, ReplayGatedJournal.Durability with { Clock = failing }, DurableStore.UniqueName("h149-order"), system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            ReplayGatedJournal.Close();
            failing.FailNext(1);
            var first = queue.GetAsync(); // the router fails handing item 1 out, restarts, and recovers from the gated journal
            await ReplayGatedJournal.ReplayArrived.Task.WaitAsync(Bound);
            Task<bool>[] puts = [queue.PutAsync(2), queue.PutAsync(3), queue.PutAsync(4)];
            await Received(queue);

            ReplayGatedJournal.Open.TrySetResult();
            Assert.All(await Task.WhenAll(puts).WaitAsync(Bound), Assert.True);
            int[] taken = [await first.WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound)];
            Assert.Equal([1, 2, 3, 4], taken);
        });

    /// <summary>
    /// Runs <paramref name="test"/> on an actor system of its own on virtual time with <see cref="ReplayGatedJournal"/>
    /// (open), Akka's recovery timeout 100 h, and a stop timeout of 1 h; then the journal answers and the system ends.
    /// </summary>
    private static async Task OnVirtualClock(string name, Func<ActorSystem, TestScheduler, Task> test)
    {
        ReplayGatedJournal.Open.TrySetResult();
        var system = ActorSystem.Create(name, VirtualClockConfig.Value);
        await using var ends = new Ends(system);
        await test(system, (TestScheduler)system.Scheduler);
    }

    private static readonly Lazy<Config> VirtualClockConfig = new(() => ConfigurationFactory.ParseString($$"""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        actorqueue.queue.stop-timeout = 1h
        {{ReplayGatedJournal.PluginId}} {
          class = "{{typeof(ReplayGatedJournal).AssemblyQualifiedName}}"
          plugin-dispatcher = "akka.actor.default-dispatcher"
          recovery-event-timeout = 100h
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig));

    /// <summary>At the end of a test: the journal answers again, and the test's actor system ends.</summary>
    private sealed class Ends(ActorSystem system) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            ReplayGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// Disposes <paramref name="queue"/>, moves the clock to twice the stop timeout once the router has the disposal (its
    /// bound counts from then), and checks that the disposal has completed.
    /// </summary>
    private async Task DisposeAtBound(BoundedQueue<int> queue, TestScheduler clock, string circumstance)
    {
        var dispose = queue.DisposeAsync().AsTask();
        await Received(queue);
        clock.Advance(TimeSpan.FromHours(2));
        Assert.True(await Poll.CompletesWithin(dispose, Bound),
            $"DisposeAsync had not completed {Bound.TotalSeconds} s after the clock reached twice the stop timeout (2 h) from the call, {circumstance}");
    }

    /// <summary>The put failed saying its item was not stored, the queue having been disposed while it recovered.</summary>
    private async Task NotStored(Task<bool> put)
    {
        var refused = await Assert.ThrowsAsync<QueueStorageException>(() => put.WaitAsync(Bound));
        Assert.Contains("while it recovered from its journal", refused.Message, StringComparison.Ordinal);
        Assert.Contains("not stored", refused.Message, StringComparison.Ordinal);
    }

    private static void WarnedOfRefusedPuts(CapturingSink logs, int puts) =>
        Assert.Contains(logs.Events, log => log.Level == LogEventLevel.Warning && log.RenderMessage().Contains($"refused the {puts} puts", StringComparison.Ordinal));

    private static Serilog.ILogger Logger(CapturingSink logs) => new LoggerConfiguration().WriteTo.Sink(logs).CreateLogger();

    /// <summary>The router's status, answered after every message sent to it before (once it has recovered).</summary>
    private async Task<QueueStatus> StatusAsync(BoundedQueue<int> queue) =>
        (await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound)).State;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Returns once the router has taken every message sent to it before: an <see cref="Identify"/> is answered by the
    /// actor's cell in mailbox order, even while the router recovers (when its own messages wait for the recovery).
    /// </summary>
    private async Task Received(BoundedQueue<int> queue) =>
        await queue.Router.Ask<ActorIdentity>(new Identify(null)).WaitAsync(Bound);
}
