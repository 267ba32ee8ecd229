using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Adversarial review (helper 147) of helper 141's detached durable router: at twice the stop timeout a disposal stops
/// waiting for a journal write that never returns, answers every caller, and the router lingers, refusing everything,
/// until the journal answers or fails the write. The journal double is <see cref="WriteGatedJournal"/> (gate held
/// shut: the write never returns), with the plugin's circuit breaker set to an hour.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class DurableDetachReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// A router that failed while its write was under way stashes everything until the write ends; a disposal then
    /// detaches it at its bound. Failed before: the put, the getter, the join and the user's stop sent after the failure
    /// (stashed) had no answer 60 s after the disposal completed: the detached router never unstashed them, so they
    /// waited for a journal that never answers. Expected: each is answered (the put and the getter fail as disposed, the
    /// join too, the stop completes), and once the journal answers, the queue opened again holds exactly the item whose
    /// put was confirmed and the one whose put was told it may have been stored — not the put refused as disposed.
    /// </summary>
    [Fact]
    public Task Callers_stashed_by_a_router_that_failed_while_writing_are_answered_when_a_disposal_detaches_it() =>
        WriteGatedJournal.OnHangingJournal("h147-failed-stash", async system =>
        {
            var clock = new FailingClock();
            var name = DurableStore.UniqueName("h147-stash");
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability with { Clock = clock }, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(2);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            clock.FailNext(1);
            var firstGet = queue.GetAsync(); // the router reads the clock to hand item 1 out, fails, and waits for the write
            await Poll.UntilAsync(() => clock.Failed, Bound, "the router has failed");

            // Sent after the failure, before the disposal: the failed router stashes them.
            var put = queue.PutAsync(3);
            var get = queue.GetAsync();
            var join = queue.JoinAsync();
            var stop = queue.StopAsync();
            Assert.True(await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound), "the disposal did not complete");

            var callers = new (string What, Task Task)[] { ("put", put), ("get", get), ("join", join), ("stop", stop), ("first get", firstGet) };
            await Poll.CompletesWithin(Task.WhenAll(callers.Select(caller => Settled(caller.Task))), Bound);
            var unanswered = callers.Where(caller => !caller.Task.IsCompleted).Select(caller => caller.What).ToList();
            Assert.True(unanswered.Count == 0, $"not answered {Bound.TotalSeconds} s after the disposal completed, the journal still not answering: {string.Join(", ", unanswered)}");
            await Assert.ThrowsAsync<ObjectDisposedException>(() => put);
            var unknown = await Assert.ThrowsAsync<QueueStorageException>(() => inFlight);
            Assert.Contains("may have been stored", unknown.Message, StringComparison.Ordinal);

            WriteGatedJournal.Open.TrySetResult();
            Assert.Equal([1, 2], await WriteGatedJournal.ReopenedItems(system, name, Bound)); // item 3 was refused: not stored
        });

    /// <summary>
    /// The disposal comes first (the router is stopping, its grace period running), then the router fails while a write
    /// is under way (a try fails and reading the clock for its retry throws). Failed before: DisposeAsync had not
    /// completed 60 s after the failure, the journal not answering: the failed router stashed the grace period's timer,
    /// so the abandon timer that detaches it was never armed, and its own bound is armed only by a disposal that comes
    /// after the failure. Expected: the disposal completes; the put whose write was under way hears it may have been
    /// stored; once the journal answers, the queue opened again holds the failed try's item and that put's.
    /// </summary>
    [Fact]
    public Task A_disposal_under_way_when_the_router_fails_while_writing_is_not_held_for_ever() =>
        WriteGatedJournal.OnHangingJournal("h147-dispose-then-fail", async system =>
        {
            var clock = new FailingClock();
            var name = DurableStore.UniqueName("h147-thenfail");
            var (running, fail) = (NewSignal(), NewSignal());
            var durability = WriteGatedJournal.Durability with { Clock = clock, Retry = new RetryPolicy { MaxAttempts = 3 } };
            var queue = new BoundedQueue<int>(10, durability, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (_, _) =>
            {
                running.TrySetResult();
                await fail.Task;
                throw new InvalidOperationException("the try fails (test)");
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);
            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(2);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            var disposal = queue.DisposeAsync().AsTask();
            var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound);
            Assert.Equal(QueueStatus.Stopping, status.State); // the router took the disposal: its grace period runs

            clock.FailNext(1);
            fail.TrySetResult(); // the try fails: the router reads the clock for its retry, and fails with the write under way
            await Poll.UntilAsync(() => clock.Failed, Bound, "the router has failed");

            Assert.True(await Poll.CompletesWithin(disposal, Bound),
                $"DisposeAsync had not completed {Bound.TotalSeconds} s after the router failed (stop timeout 1 s), the journal not answering its write");
            var unknown = await Assert.ThrowsAsync<QueueStorageException>(() => inFlight.WaitAsync(Bound));
            Assert.Contains("may have been stored", unknown.Message, StringComparison.Ordinal);
            WriteGatedJournal.Open.TrySetResult();
            Assert.Equal([1, 2], await WriteGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// StopAsync without a timeout while a put's write hangs, then DisposeAsync. Expected (passes): the disposal's timeout
    /// ends the grace period and the router detaches; the stop, the put and the disposal are all answered, and once the
    /// journal answers, the queue opened again holds the put's item.
    /// </summary>
    [Fact]
    public Task A_disposal_after_a_stop_without_timeout_is_bounded_while_a_write_hangs() =>
        WriteGatedJournal.OnHangingJournal("h147-infinite-stop", async system =>
        {
            var name = DurableStore.UniqueName("h147-infinite");
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(1);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            var stop = queue.StopAsync(Timeout.InfiniteTimeSpan);

            Assert.True(await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound), "the disposal did not complete");
            Assert.True(await Poll.CompletesWithin(stop, Bound), "the stop without a timeout was not answered");
            await Assert.ThrowsAsync<QueueStorageException>(() => inFlight.WaitAsync(Bound));
            WriteGatedJournal.Open.TrySetResult();
            Assert.Equal([1], await WriteGatedJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// The journal fails the hung write after the disposal detached the router (it rejects it). Expected (passes): the
    /// router stops and frees the name; the queue opened again holds the running item (its end never written) and not
    /// the item whose put was told it may have been stored (it was not), nor the one refused behind it; a second put
    /// into the reopened queue gets a fresh id (its items are exactly what was stored, in order).
    /// </summary>
    [Fact]
    public Task A_detached_router_whose_write_the_journal_rejects_later_frees_the_name_and_loses_nothing_confirmed() =>
        WriteGatedJournal.OnHangingJournal("h147-rejected", async system =>
        {
            var name = DurableStore.UniqueName("h147-reject");
            var running = NewSignal();
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);
            Assert.True(await queue.PutAsync(10).WaitAsync(Bound));

            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(2);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            var behind = queue.PutAsync(3);
            Assert.True(await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound), "the disposal did not complete");
            await Assert.ThrowsAsync<QueueStorageException>(() => inFlight.WaitAsync(Bound));
            await Assert.ThrowsAsync<QueueStorageException>(() => behind.WaitAsync(Bound));

            WriteGatedJournal.RejectWrites = true;
            WriteGatedJournal.Open.TrySetResult();
            Assert.Equal([1, 10], await WriteGatedJournal.ReopenedItems(system, name, Bound, beforeDrain: () => WriteGatedJournal.RejectWrites = false));
        });

    /// <summary>
    /// The actor system terminates while the router lingers detached. Expected (passes): the termination completes, the
    /// disposal stays completed, every put was answered, and a DisposeAsync called again completes at once.
    /// </summary>
    [Fact]
    public Task The_actor_system_terminating_while_a_router_is_detached_ends_it_and_leaves_no_caller_waiting() =>
        WriteGatedJournal.OnHangingJournal("h147-terminate", async system =>
        {
            var name = DurableStore.UniqueName("h147-term");
            var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, name, system: system);
            await queue.StartAsync().WaitAsync(Bound);
            WriteGatedJournal.Close();
            var inFlight = queue.PutAsync(1);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
            var behind = queue.PutAsync(2);
            Assert.True(await Poll.CompletesWithin(queue.DisposeAsync().AsTask(), Bound), "the disposal did not complete");
            var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound);
            Assert.Equal(QueueStatus.Stopped, status.State); // lingering, detached

            Assert.True(await Poll.CompletesWithin(system.Terminate(), Bound), "the actor system did not terminate");
            Assert.True(await Poll.CompletesWithin(Task.WhenAll(Faulted(inFlight), Faulted(behind)), Bound), "a put was not answered");
            Assert.True(queue.DisposeAsync().IsCompleted, "a second DisposeAsync did not complete at once");
        });

    /// <summary>
    /// An in-memory disposal waiting for the reports of its discarded items (an error handler that never returns) is
    /// bounded by delays on the actor system's scheduler (LifecycleWaiters.Delay; stop timeout 1 h here). The system
    /// terminates meanwhile. Expected: the disposal completes once the system has terminated, not an hour later.
    /// </summary>
    [Fact]
    public async Task A_disposal_waiting_for_reports_completes_when_the_actor_system_terminates()
    {
        var system = ActorSystem.Create("h147-reports-terminate", ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1h")
            .WithFallback(ActorQueueRuntime.DefaultConfig));
        var (running, release) = (NewSignal(), NewSignal());
        try
        {
            var queue = new BoundedQueue<int>(10, system: system, name: "h147-reports");
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (_, _) =>
            {
                running.TrySetResult();
                await release.Task;
            }, numWorkers: 1, errorHandler: (_, _) => new TaskCompletionSource().Task).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);
            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
            var dispose = queue.DisposeAsync().AsTask();
            Assert.Equal(QueueStatus.Stopping, (await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound)).State);
            release.TrySetResult(); // the worker returns: item 2 is discarded, its report never ends
            await Poll.UntilAsync(() => queue.Metrics.Discarded == 1, Bound, () => $"item 2 is discarded ({queue.Metrics})");

            Assert.True(await Poll.CompletesWithin(system.Terminate(), Bound), "the actor system did not terminate");
            Assert.True(await Poll.CompletesWithin(dispose, Bound), $"DisposeAsync had not completed {Bound.TotalSeconds} s after the actor system terminated");
        }
        finally
        {
            release.TrySetResult();
            await system.Terminate();
        }
    }

    private static async Task Faulted(Task task)
    {
        try
        {
            await task;
        }
        catch (QueueStorageException)
        {
        }
    }

    /// <summary>Completes when <paramref name="task"/> does, however it ends.</summary>
    private static Task Settled(Task task) => task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
