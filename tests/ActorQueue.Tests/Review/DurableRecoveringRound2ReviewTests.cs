using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.TestKit;

namespace ActorQueue.Tests.Review;

using RecoveringGateJournal = ActorQueue.Tests.Queues.Durable.ReplayGateJournal<DurableRecoveringRound2ReviewTests>;

/// <summary>
/// Review (helper 155) of the durable router's own stash while it recovers (DurableRouterActor.Recovering.cs, merged
/// with helper 149): what it keeps is answered whatever ends the recovery — a journal that fails the replay, the actor
/// system terminating — and what it hands back keeps its order. On virtual time (Akka's TestScheduler), stop timeout
/// 1 h, Akka's recovery timeout 100 h, with a journal of its own (<see cref="RecoveringGateJournal"/>), so that these
/// tests do not share a gate with <see cref="DurableRecoveryDisposeReviewTests"/>.
/// </summary>
public sealed class DurableRecoveringRound2ReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// A queue holding one stored item, reopened on the gated journal, which holds its replay: a start, a put of 2 and the
    /// disposal are called and have reached the recovering router.
    /// </summary>
    private async Task<(string Name, Task Start, Task<bool> Put, Task Dispose)> StartPutAndDisposeWhileRecovering(ActorSystem system, string tag)
    {
        var name = await StoredOne(system, tag);
        RecoveringGateJournal.Close();
        var queue = new BoundedQueue<int>(10, RecoveringGateJournal.Durability, name, system: system);
        await RecoveringGateJournal.ReplayArrived.Task.WaitAsync(Bound);
        var start = queue.StartAsync();
        var put = queue.PutAsync(2);
        var dispose = queue.DisposeAsync().AsTask();
        await Received(queue);
        return (name, start, put, dispose);
    }

    /// <summary>
    /// The actor system terminates while a queue recovers from a journal that has not answered the replay, with a start,
    /// a put and the disposal waiting for the recovery. Expected: the disposal completes, and the start and the put are
    /// answered (the put with an error: it was not stored), without the clock moving.
    /// </summary>
    [Fact]
    public Task Callers_waiting_for_a_recovery_are_answered_when_the_actor_system_terminates() =>
        OnVirtualClock("h155-terminate", async (system, _) =>
        {
            var (_, start, put, dispose) = await StartPutAndDisposeWhileRecovering(system, "h155-terminate");

            await system.Terminate().WaitAsync(Bound);
            Assert.True(await Poll.CompletesWithin(dispose, Bound), "DisposeAsync had not completed after the actor system terminated, the queue recovering");
            Assert.True(await Poll.CompletesWithin(start, Bound), "StartAsync had not completed after the actor system terminated, the queue recovering");
            Assert.True(await Poll.CompletesWithin(put, Bound), "PutAsync had not completed after the actor system terminated, the queue recovering");
            await Assert.ThrowsAnyAsync<Exception>(() => put);
        });

    /// <summary>
    /// The journal fails the replay while a start, a put and the disposal wait for the recovery. Expected: the disposal
    /// completes, the start and the put fail (the put: not stored), and the queue opened again holds the item stored
    /// before, not the refused one.
    /// </summary>
    [Fact]
    public Task Callers_waiting_for_a_recovery_the_journal_fails_are_answered_and_nothing_of_theirs_is_stored() =>
        OnVirtualClock("h155-replay-fails", async (system, _) =>
        {
            var (name, start, put, dispose) = await StartPutAndDisposeWhileRecovering(system, "h155-fails");

            RecoveringGateJournal.FailReplay = true;
            RecoveringGateJournal.Open.TrySetResult();
            Assert.True(await Poll.CompletesWithin(dispose, Bound), "DisposeAsync had not completed after the journal failed the recovery");
            await Assert.ThrowsAnyAsync<Exception>(() => start.WaitAsync(Bound));
            await Assert.ThrowsAnyAsync<Exception>(() => put.WaitAsync(Bound));
            RecoveringGateJournal.FailReplay = false;
            Assert.Equal([1], await RecoveringGateJournal.ReopenedItems(system, name, Bound));
        });

    /// <summary>
    /// The journal fails the replay while a put waits for the recovery, the queue not disposed. Expected: the put fails
    /// as a storage error saying its item was not stored, as the queue could not recover. Failed before: it failed with
    /// ObjectDisposedException (the router's stash went to dead letters as it stopped), though nobody disposed the queue.
    /// </summary>
    [Fact]
    public Task A_put_waiting_for_a_recovery_the_journal_fails_hears_that_its_item_was_not_stored() =>
        OnVirtualClock("h155-replay-fails-put", async (system, _) =>
        {
            var name = await StoredOne(system, "h155-fails-put");
            RecoveringGateJournal.Close();
            using var queue = new BoundedQueue<int>(10, RecoveringGateJournal.Durability, name, system: system);
            await RecoveringGateJournal.ReplayArrived.Task.WaitAsync(Bound);
            var put = queue.PutAsync(2);
            await Received(queue);

            RecoveringGateJournal.FailReplay = true;
            RecoveringGateJournal.Open.TrySetResult();
            var refused = await Assert.ThrowsAsync<QueueStorageException>(() => put.WaitAsync(Bound));
            Assert.Contains("could not recover from its journal", refused.Message, StringComparison.Ordinal);
            Assert.Contains("not stored", refused.Message, StringComparison.Ordinal);
            RecoveringGateJournal.FailReplay = false;
        });

    /// <summary>
    /// Messages kept while recovering, and those that come once it has ended, keep their order: a processing queue
    /// restarts (its clock throws as a getter comes) and recovers from the gated journal while two puts come; the journal
    /// answers and two more puts follow at once. Expected: the items come out in the order put.
    /// </summary>
    [Fact]
    public Task Puts_made_while_recovering_are_not_passed_by_puts_made_after_it() =>
        OnVirtualClock("h155-order", async (system, _) =>
        {
            var failing = new FailingClock();
            await using var queue = new BoundedQueue<int>(10, RecoveringGateJournal.Durability with { Clock = failing }, DurableStore.UniqueName("h155-order"), system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            RecoveringGateJournal.Close();
            failing.FailNext(1);
            var first = queue.GetAsync(); // the router fails handing item 1 out, restarts, and recovers from the gated journal
            await RecoveringGateJournal.ReplayArrived.Task.WaitAsync(Bound);
            Task<bool>[] during = [queue.PutAsync(2), queue.PutAsync(3)];
            await Received(queue);
            RecoveringGateJournal.Open.TrySetResult();
            Task<bool>[] after = [queue.PutAsync(4), queue.PutAsync(5)];

            Assert.All(await Task.WhenAll([.. during, .. after]).WaitAsync(Bound), Assert.True);
            int[] taken = [await first.WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound),
                await queue.GetAsync().WaitAsync(Bound), await queue.GetAsync().WaitAsync(Bound)];
            Assert.Equal([1, 2, 3, 4, 5], taken);
        });

    /// <summary>
    /// A start and then a stop are called while the queue recovers (neither awaited before the next call). Expected: the
    /// queue ends stopped, as the calls were made. Failed before ("Expected: Stopped, Actual: Processing"): the facade sent a
    /// durable queue's start only once the recovery had ended, so the stop, kept in order by the router while it recovered,
    /// overtook it; now the start is sent at once.
    /// </summary>
    [Fact]
    public Task A_stop_called_after_a_start_while_recovering_leaves_the_queue_stopped() =>
        OnVirtualClock("h155-start-stop", async (system, _) =>
        {
            var name = await StoredOne(system, "h155-start-stop");
            RecoveringGateJournal.Close();
            await using var queue = new BoundedQueue<int>(10, RecoveringGateJournal.Durability, name, system: system);
            await RecoveringGateJournal.ReplayArrived.Task.WaitAsync(Bound);
            var start = queue.StartAsync();
            var stop = queue.StopAsync(TimeSpan.Zero);
            await Received(queue);
            RecoveringGateJournal.Open.TrySetResult();

            await Task.WhenAll(start, stop).WaitAsync(Bound);
            Assert.Equal(QueueStatus.Stopped, (await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound)).State);
        });

    /// <summary>
    /// A get made while the queue recovers is answered when the disposal gives the recovery up at its bound, as a message
    /// to a router that is gone, without a dead letter logged for it (a get is an undeliverable request, whose dead
    /// letters are suppressed). Failed before: the give-up wrapped it in a <see cref="DeadLetter"/>, which Akka publishes
    /// (and logs) as it is, whatever it wraps: the probe heard that dead letter before the sentinel published after the get failed.
    /// </summary>
    [Fact]
    public Task A_get_refused_when_a_recovery_is_given_up_is_not_logged_as_a_dead_letter() =>
        OnVirtualClock("h155-give-up-noise", async (system, clock) =>
        {
            var name = await StoredOne(system, "h155-noise");
            var deadLetters = CreateTestProbe(system);
            system.EventStream.Subscribe(deadLetters.Ref, typeof(DeadLetter));
            RecoveringGateJournal.Close();
            var queue = new BoundedQueue<int>(10, RecoveringGateJournal.Durability, name, system: system);
            await RecoveringGateJournal.ReplayArrived.Task.WaitAsync(Bound);
            var get = queue.GetAsync();
            var dispose = queue.DisposeAsync().AsTask();
            await Received(queue);
            clock.Advance(TimeSpan.FromHours(2));

            Assert.True(await Poll.CompletesWithin(dispose, Bound), "DisposeAsync had not completed at its bound, the queue recovering");
            await Assert.ThrowsAsync<ObjectDisposedException>(() => get.WaitAsync(Bound));
            system.EventStream.Publish(new DeadLetter("sentinel", deadLetters.Ref, deadLetters.Ref));
            var first = await deadLetters.ExpectMsgAsync<DeadLetter>(Bound);
            Assert.True(Equals(first.Message, "sentinel"), $"a dead letter was published for {first.Message}");
        });

    /// <summary>A queue of a new name holding item 1 (stored through the open journal), disposed: its name is free.</summary>
    private async Task<string> StoredOne(ActorSystem system, string prefix)
    {
        var name = DurableStore.UniqueName(prefix);
        await using var first = new BoundedQueue<int>(10, RecoveringGateJournal.Durability, name, system: system);
        await first.StartAsync().WaitAsync(Bound);
        Assert.True(await first.PutAsync(1).WaitAsync(Bound));
        return name;
    }

    private static async Task OnVirtualClock(string name, Func<ActorSystem, TestScheduler, Task> test)
    {
        RecoveringGateJournal.FailReplay = false;
        RecoveringGateJournal.Open.TrySetResult();
        var system = ActorSystem.Create(name, VirtualClockConfig.Value);
        try
        {
            await test(system, (TestScheduler)system.Scheduler);
        }
        finally
        {
            RecoveringGateJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    private static readonly Lazy<Config> VirtualClockConfig = new(() => ConfigurationFactory.ParseString($$"""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        actorqueue.queue.stop-timeout = 1h
        {{RecoveringGateJournal.PluginId}} {
          class = "{{typeof(RecoveringGateJournal).AssemblyQualifiedName}}"
          plugin-dispatcher = "akka.actor.default-dispatcher"
          recovery-event-timeout = 100h
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig));

    /// <summary>Returns once the router has taken every message sent to it before (an Identify is answered by its cell in mailbox order).</summary>
    private async Task Received(BoundedQueue<int> queue) =>
        await queue.Router.Ask<ActorIdentity>(new Identify(null)).WaitAsync(Bound);
}
