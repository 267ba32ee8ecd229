using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Serilog;
using Serilog.Events;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the queues' disposal bound by helper 141: a journal that never answers a write held a durable queue's
/// disposal for ever (the router waited for the write to end before it stopped), and an in-memory disposal could take
/// three times its stop timeout (the grace period, the cancelled work, then the discarded items' reports), where the
/// documented bound is twice. The journal double is <see cref="WriteGatedJournal"/> (its gate held shut: the write never
/// returns), with the plugin's circuit breaker set to an hour (its default, 10 s, would fail the write instead).
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class DurableDisposeHangReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// Failed before: DisposeAsync had not completed 60 s (the dilated bound, 20 s × 3) after it was called (stop timeout
    /// 1 s): the durable router's Abandon returned while a write was under way ("CheckStopped comes back here when the
    /// write ends"), and the write never ended. Expected: the disposal completes by its bound; the put whose write was
    /// under way hears it may have been stored, the put behind it that it was not (a warning counts both); the queue's name stays taken while the
    /// journal may still write under it, and once the journal answers, the queue opened again holds the item that was
    /// running (its end was never written) and the one whose write landed late (at least once), not the refused one.
    /// </summary>
    [Fact]
    public Task A_disposal_is_not_held_for_ever_by_a_journal_that_never_answers_a_write_and_nothing_accepted_is_lost() =>
        WriteGatedJournal.OnHangingJournal("h141-hanging-journal", async system =>
        {
            var name = DurableStore.UniqueName("h141-hang");
            var running = NewSignal();
            var warnings = new ConcurrentQueue<string>();
            var logger = new LoggerConfiguration().Filter.ByIncludingOnly(e =>
            {
                if (e.Level == LogEventLevel.Warning)
                {
                    warnings.Enqueue(e.RenderMessage());
                }

                return false;
            }).CreateLogger();
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, logger: logger, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct); // honours its token: the journal alone holds the disposal
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);

            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(2);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound); // item 2's write is at the journal, and stays there
            var behind = queue.PutAsync(3); // waits for the next write
            var disposed = await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s) while the journal did not answer a write: {queue.Metrics}");
            var unknown = await Assert.ThrowsAsync<QueueStorageException>(() => inFlight.WaitAsync(Bound));
            Assert.Contains("may have been stored", unknown.Message, StringComparison.Ordinal);
            var refused = await Assert.ThrowsAsync<QueueStorageException>(() => behind.WaitAsync(Bound));
            Assert.Contains("before the item was stored", refused.Message, StringComparison.Ordinal);
            Assert.Contains(warnings, warning => warning.Contains("a write: 1 changes their callers were waiting for may have been stored", StringComparison.Ordinal)
                && warning.Contains(", 1 were not", StringComparison.Ordinal));
            // The journal may still write under the name: a queue opened on it now would recover without that write.
            var taken = Assert.Throws<InvalidOperationException>(() => new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system));
            Assert.Contains("until its journal has answered its last write", taken.Message, StringComparison.Ordinal);

            WriteGatedJournal.Open.TrySetResult(); // the journal answers at last: item 2 is stored after all
            Assert.Equal([1, 2], await WriteGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// Failed before: the disposal of a stopped queue whose drain was being written had not completed 60 s after it was
    /// called: a stopped router (StopAtOnce) armed no timer unless tries were running, and waited for the write.
    /// Expected: the disposal completes; the drain hands its item back (its removal may have been stored: handed back,
    /// it is never lost), and once the journal answers, the queue opened again is empty.
    /// </summary>
    [Fact]
    public Task A_disposal_of_a_stopped_queue_is_not_held_for_ever_by_a_drain_the_journal_never_answers() =>
        WriteGatedJournal.OnHangingJournal("h141-hanging-drain", async system =>
        {
            var name = DurableStore.UniqueName("h141-drain");
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await queue.StopAsync().WaitAsync(Bound);

            WriteGatedJournal.Close();
            var drain = queue.DrainAsync();
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            var disposed = await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound);

            Assert.True(disposed, $"DisposeAsync of a stopped queue had not completed {Bound.TotalSeconds} s after it was called while the journal did not answer its drain's write");
            Assert.Equal([1], await drain.WaitAsync(Bound));
            WriteGatedJournal.Open.TrySetResult();
            Assert.Empty(await WriteGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// A router that fails on its thread while a write is under way waits for the write to end before it restarts, and
    /// stashes everything meanwhile, a disposal included. Failed before: DisposeAsync had not completed 60 s after it was
    /// called, the journal not answering the write (the stashed disposal started no timer). Expected: the disposal
    /// completes by its bound (twice the stop timeout from when it came); the put whose write was under way hears it may
    /// have been stored, the getter is answered, and once the journal answers, the queue opened again holds both items.
    /// </summary>
    [Fact]
    public Task A_disposal_is_not_held_for_ever_by_a_failed_router_waiting_for_a_write_the_journal_never_answers() =>
        WriteGatedJournal.OnHangingJournal("h141-failed-writing", async system =>
        {
            var clock = new FailingClock();
            var name = DurableStore.UniqueName("h141-failed");
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability with { Clock = clock }, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(2);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            clock.FailNext(1);
            var get = queue.GetAsync(); // the router reads the clock to hand item 1 out, fails, and waits for the write to end
            await Poll.UntilAsync(() => clock.Failed, Bound, "the router has failed");

            var disposed = await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s) on a router that failed while the journal did not answer its write");
            var unknown = await Assert.ThrowsAsync<QueueStorageException>(() => inFlight.WaitAsync(Bound));
            Assert.Contains("may have been stored", unknown.Message, StringComparison.Ordinal);
            Assert.True(await Poll.CompletesWithin(get, Bound), "the getter was never answered");
            WriteGatedJournal.Open.TrySetResult();
            Assert.Equal([1, 2], await WriteGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// The documented bound (README "Lifecycle"; <c>DisposeAsync</c>): a disposal completes at most twice the stop timeout
    /// after it is called, whatever the workers and the error handler do. On virtual time (Akka's TestScheduler) with a
    /// stop timeout of an hour, so a wait of the timeout on the real clock is a hang. Failed before: DisposeAsync had not
    /// completed 60 s (the dilated bound) after the clock reached twice the stop timeout: the worker, cancelled at 1 h,
    /// returned at 1 h 59 min, and the reports of the queued items (whose handler never returns) then held the disposal
    /// for another stop timeout (<c>LifecycleWaiters.CompleteStopsAfter</c>: <c>Task.Delay(timeout)</c>), 3 h in all.
    /// </summary>
    [Fact]
    public Task A_disposal_completes_within_twice_its_stop_timeout_even_when_the_reports_of_its_items_never_end() =>
        OnVirtualClock("h141-virtual-reports", async (system, clock) =>
        {
            var (running, cancelled, release) = (NewSignal(), NewSignal(), NewSignal());
            try
            {
                var queue = new BoundedQueue<int>(10, system: system, name: "h141-twice");
                await queue.StartAsync().WaitAsync(Bound);
                await queue.StartWorkersAsync(async (_, ct) =>
                {
                    running.TrySetResult();
                    try
                    {
                        await Task.Delay(Timeout.Infinite, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        cancelled.TrySetResult();
                        await release.Task; // honours its token late: just before the disposal would leave it behind
                        throw;
                    }
                }, numWorkers: 1, errorHandler: (_, _) => new TaskCompletionSource().Task).WaitAsync(Bound);
                Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
                await running.Task.WaitAsync(Bound);
                Assert.True(await queue.PutAsync(2).WaitAsync(Bound));

                var dispose = await Disposing(queue);
                clock.Advance(TimeSpan.FromHours(1)); // the grace period ends: the worker is cancelled
                await cancelled.Task.WaitAsync(Bound);
                await StatusAsync(queue); // the router has ended the grace period
                clock.Advance(TimeSpan.FromMinutes(59));
                release.TrySetResult(); // the worker returns at 1 h 59 min; the queued items are reported, for ever
                await Poll.UntilAsync(() => queue.Metrics.Discarded == 2, Bound, () => $"the queued items are discarded ({queue.Metrics})");
                Assert.False(dispose.IsCompleted, "the disposal completed before its reports or its bound");
                clock.Advance(TimeSpan.FromMinutes(1)); // twice the stop timeout after the disposal

                Assert.True(await Poll.CompletesWithin(dispose, Bound),
                    $"DisposeAsync had not completed {Bound.TotalSeconds} s after the clock reached twice the stop timeout (2 h) from the call");
            }
            finally
            {
                release.TrySetResult();
            }
        });

    /// <summary>
    /// The documented 2× for both routers (they share <c>StopGrace</c>): a worker that ignores its token is given the grace
    /// period and then the stop timeout again — the disposal is still waiting one minute before twice the stop timeout
    /// (the router answers, so every timer due by then has been handled) and completes at twice the stop timeout. An
    /// implementation that leaves the worker behind as the grace period ends, or never, fails. On virtual time, stop
    /// timeout 1 h; the durable queue journals on the (open) gated journal.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task A_disposal_leaves_a_worker_that_ignores_its_token_behind_at_twice_its_stop_timeout(bool durable) =>
        OnVirtualClock($"h141-virtual-deaf-{durable}", async (system, clock) =>
        {
            var (running, hold) = (NewSignal(), NewSignal());
            try
            {
                var name = DurableStore.UniqueName("h141-deaf");
                var queue = durable ? new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system) : new BoundedQueue<int>(10, system: system, name: name);
                await queue.StartAsync().WaitAsync(Bound);
                await queue.StartWorkersAsync((_, _) =>
                {
                    running.TrySetResult();
                    return hold.Task; // never looks at its token
                }, numWorkers: 1).WaitAsync(Bound);
                Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
                await running.Task.WaitAsync(Bound);

                var dispose = await Disposing(queue);
                clock.Advance(TimeSpan.FromHours(1)); // the grace period ends: the token is cancelled, and ignored
                await StatusAsync(queue); // the router has ended the grace period (and armed its next timer at 1 h)
                clock.Advance(TimeSpan.FromMinutes(59));

                Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue)); // the router is still there, waiting for the worker
                Assert.False(dispose.IsCompleted, "the disposal left the worker behind before twice its stop timeout");
                clock.Advance(TimeSpan.FromMinutes(1));
                Assert.True(await Poll.CompletesWithin(dispose, Bound),
                    $"DisposeAsync had not completed {Bound.TotalSeconds} s after the clock reached twice the stop timeout (2 h) from the call");
            }
            finally
            {
                hold.TrySetResult();
            }
        });

    /// <summary>
    /// Runs <paramref name="test"/> on an actor system of its own on virtual time (Akka's TestScheduler: a wait on the real
    /// clock of the stop timeout, an hour, is a hang), with the gated journal, open.
    /// </summary>
    private static async Task OnVirtualClock(string name, Func<ActorSystem, TestScheduler, Task> test)
    {
        WriteGatedJournal.Open.TrySetResult();
        var system = ActorSystem.Create(name, ConfigurationFactory.ParseString($$"""
            akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
            actorqueue.queue.stop-timeout = 1h
            gated.journal {
              class = "{{typeof(WriteGatedJournal).AssemblyQualifiedName}}"
              plugin-dispatcher = "akka.actor.default-dispatcher"
            }
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

    /// <summary>Disposes <paramref name="queue"/> and returns the disposal once the router has taken its stop (its timers are armed on the virtual clock).</summary>
    private async Task<Task> Disposing(BoundedQueue<int> queue)
    {
        var dispose = queue.DisposeAsync().AsTask();
        Assert.Equal(QueueStatus.Stopping, await StatusAsync(queue));
        return dispose;
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

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
