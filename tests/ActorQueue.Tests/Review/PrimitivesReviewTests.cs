using ActorQueue.Coordination;
using ActorQueue.Primitives;
using ActorQueue.Primitives.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the async primitives by helper 72.</summary>
public class PrimitivesReviewTests : ActorQueueTestKit
{
    private const int Rounds = 150;

    /// <summary>
    /// A holder's reentry that is cancelled while the coordinator grants it must take nothing. <c>LockCoordinator.Offer</c>
    /// raises the depth 1 → 2 (<c>TryReenter</c>), then <c>TryGrant</c> fails because the token fired; if the holder's flow,
    /// having seen its reentry cancelled, releases its one real level inside that window, its release sees depth 2 and
    /// leaves a level "remaining" (no pass-on, no <c>LockRelease</c>). Failed before: the undo left the lock held at depth 0
    /// by an owner nobody would release, and every later acquire waited for ever. Now an undo that takes the last level
    /// frees the lock in the coordinator. The interleaving is made deterministic by a waiter whose <c>TryGrant</c> is
    /// cancelled and releases at that instant.
    /// </summary>
    [Fact]
    public async Task A_reentry_cancelled_as_the_coordinator_grants_it_does_not_swallow_the_holders_release()
    {
        using var gate = new AsyncLock(Sys);
        Assert.True(await gate.AcquireAsync()); // the fast path: this flow holds one level
        var owner = gate.Identity.Current!;
        var holderFlow = ExecutionContext.Capture()!;

        // Exactly what AcquireAsync does for a holder's reentry: announce, mark sending, send the waiter.
        Assert.False(gate.State.TryTakeOrAnnounce());
        gate.State.Sending();
        var reentry = new CancelledAtGrant(gate.Coordinator, owner,
            () => ExecutionContext.Run(holderFlow, _ => gate.Release(), null));
        gate.Coordinator.Tell(reentry, ActorRefs.NoSender);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(reentry.WaitAsTaskAsync(CancellationToken.None)));
        // The cancellation completes the waiter before the holder releases (both inside its TryGrant, on the
        // coordinator's thread): wait for the release itself rather than read a flag the test may reach first.
        await Within(reentry.Released.Task);

        // The holder acquired once and released once; its reentry was cancelled: the lock must be free for anyone.
        await Within(InAnotherFlow(async () =>
        {
            await gate.AcquireAsync();
            gate.Release();
        }));
    }

    /// <summary>A reentry whose caller cancels it, and then releases its one level, as the coordinator grants it.</summary>
    private sealed class CancelledAtGrant(IActorRef coordinator, object owner, Action releaseHolder) : PrimitiveWaiter(coordinator, owner)
    {
        /// <summary>Completed once the holder has released, inside the grant.</summary>
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool TryGrant(in PermitGrant grant)
        {
            TryCancel(new CancellationToken(true));
            releaseHolder();
            Released.SetResult();
            return base.TryGrant(grant);
        }
    }

    /// <summary>
    /// A flow that asks for the lock again and then releases its level before that acquire reaches the coordinator is
    /// granted the lock as a fresh hold under its identity, and must be able to release it. Failed before (6 of 7 runs
    /// of 500 rounds): the release was the flow's last level, so it took its identity out of its
    /// <c>ExecutionContext</c>; granted to that identity, the flow held a lock it could not release
    /// (<c>SynchronizationLockException</c>), held for ever. Now a flow keeps its identity at its last release while an
    /// acquire of its own is unanswered (<c>FlowToken.IsAsking</c>).
    /// </summary>
    [Fact]
    public async Task A_flow_that_releases_while_its_next_acquire_is_on_its_way_can_release_what_it_is_granted()
    {
        using var gate = new AsyncLock(Sys);
        for (var i = 0; i < 500; i++)
        {
            await InAnotherFlow(async () =>
            {
                await gate.AcquireAsync();
                var again = gate.AcquireAsync(); // sent to the coordinator with this flow's token
                gate.Release();                  // the level this flow held; the acquire above may not have arrived
                await Within(again);             // granted, either as a reentry or as a fresh hold: this flow holds the lock
                gate.Release();
            });

            await Within(InAnotherFlow(async () =>
            {
                await gate.AcquireAsync();
                gate.Release();
            }));
        }
    }

    /// <summary>
    /// As <see cref="A_flow_that_releases_while_its_next_acquire_is_on_its_way_can_release_what_it_is_granted"/>, with the
    /// release landing at every point of the coordinator's handling of the reentry (a spin of 0 to 126 iterations
    /// between the acquire and the release). Failed before (CI of 830ea34 and 4 of 5 local runs): the coordinator counted
    /// the reentry as arrived before it decided, so a release between the two forgot the flow's identity and the reentry,
    /// then queued as a fresh hold, was granted to an identity the flow no longer carried. A flow now keeps its identity
    /// while any acquire of its own is unanswered (<c>FlowIdentity</c>'s asking count).
    /// </summary>
    [Fact]
    public async Task A_flow_that_releases_at_any_point_of_its_reentrys_handling_can_release_what_it_is_granted()
    {
        using var gate = new AsyncLock(Sys);
        for (var i = 0; i < 100_000; i++)
        {
            var spin = i % 64 * 2;
            await InAnotherFlow(async () =>
            {
                await gate.AcquireAsync();
                var again = gate.AcquireAsync();
                Thread.SpinWait(spin);
                gate.Release();
                await Within(again);
                gate.Release();
            });
        }

        await Within(InAnotherFlow(async () =>
        {
            await gate.AcquireAsync();
            gate.Release();
        }));
        Assert.False(gate.IsLocked);
    }

    /// <summary>
    /// Failed before: one flow could borrow two tokens of a capacity limiter and never give one back. The flow kept its
    /// identity only while it held (<c>FlowIdentity(_state.Holders.ContainsKey)</c>), so a second <c>AcquireAsync</c> made
    /// while the first waited got a fresh token that replaced the first in the flow: two borrowers, two tokens lent, and
    /// <c>Release</c> returned only the second. Expected (class doc "each borrower holds at most one token: by default the
    /// calling flow"; <c>AcquireOnBehalfOfAsync</c>: "already holds or waits"): the second acquire fails with
    /// <c>InvalidOperationException</c> and nothing leaks.
    /// </summary>
    [Fact]
    public async Task One_flow_cannot_borrow_two_capacity_tokens_and_leak_one()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        await limiter.AcquireOnBehalfOfAsync("other");
        var first = limiter.AcquireAsync();
        await Eventually(() => limiter.WaitingCount == 1, "the flow's first acquire waits");
        var second = limiter.AcquireAsync(); // the same flow, while its first acquire waits

        limiter.TotalTokens = 3; // room for both, if both are (wrongly) taken as borrowers of their own
        await Within(first);
        var error = await Record.ExceptionAsync(() => Within(second));
        limiter.Release(); // the flow gives back what it can

        Assert.IsType<InvalidOperationException>(error); // before: null, the flow held a second token
        await Eventually(() => limiter.BorrowedTokens == 1, "only 'other' still borrows");
    }

    /// <summary>Waiters of every primitive that wait while their actor system terminates all complete, and disposal completes afterwards.</summary>
    [Fact]
    public async Task Every_waiter_completes_when_the_actor_system_terminates_and_disposal_then_completes()
    {
        var system = ActorSystem.Create("review72-terminate",
            ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(ActorQueueRuntime.DefaultConfig));
        var @lock = new AsyncLock(system);
        var semaphore = new AsyncSemaphore(0, system);
        var limiter = new AsyncCapacityLimiter(1, system);
        var @event = new AsyncEvent(system);
        var condition = new AsyncCondition(system: system);

        await @lock.AcquireAsync();
        await limiter.AcquireOnBehalfOfAsync("holder");
        var waits = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            waits.Add(InAnotherFlow(() => @lock.AcquireAsync()));
            waits.Add(semaphore.AcquireAsync());
            waits.Add(limiter.AcquireOnBehalfOfAsync(i));
            waits.Add(@event.WaitAsync(new CancellationTokenSource().Token));
        }

        waits.Add(InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.WaitAsync();
        }));
        await Eventually(() => @lock.WaitingCount == 3 && semaphore.WaitingCount == 3 && limiter.WaitingCount == 3
            && condition.Lock.State.ConditionWaiters == 1, "everyone waits");

        await system.Terminate().WaitAsync(TimeSpan.FromSeconds(30));

        foreach (var wait in waits)
        {
            var error = await Record.ExceptionAsync(() => Within(wait));
            Assert.IsType<ObjectDisposedException>(error);
        }

        await Within(@lock.DisposeAsync().AsTask());
        await Within(semaphore.DisposeAsync().AsTask());
        await Within(limiter.DisposeAsync().AsTask());
        await Within(@event.DisposeAsync().AsTask());
        await Within(condition.DisposeAsync().AsTask());
    }

    /// <summary>Disposing a lock with flows in its line, an actor in its gate and a condition waiter fails them all, and answers the actor.</summary>
    [Fact]
    public async Task Disposing_a_lock_with_many_kinds_of_waiter_fails_every_one()
    {
        var @lock = new AsyncLock(Sys);
        var condition = new AsyncCondition(@lock);
        var conditionWait = InAnotherFlow(async () =>
        {
            await condition.AcquireAsync();
            await condition.WaitAsync();
        });
        await Eventually(() => @lock.State.ConditionWaiters == 1 && !@lock.IsLocked, "a condition waiter waits");

        await @lock.AcquireAsync();
        var flows = Enumerable.Range(0, 5).Select(_ => InAnotherFlow(() => @lock.AcquireAsync())).ToList();
        await Eventually(() => @lock.WaitingCount == 5, "five flows wait");
        var actor = CreateTestProbe();
        @lock.Coordinator.Tell(new Acquire(7), actor.Ref);
        await Eventually(() => @lock.WaitingCount == 6, "the actor waits too");

        await Within(@lock.DisposeAsync().AsTask());

        foreach (var wait in flows.Cast<Task>().Append(conditionWait))
        {
            Assert.IsType<ObjectDisposedException>(await Record.ExceptionAsync(() => Within(wait)));
        }

        Assert.IsType<Refused>(await actor.ExpectMsgAsync<Refused>());
        Assert.Throws<ObjectDisposedException>(() => { _ = @lock.AcquireAsync(); });
    }
}
