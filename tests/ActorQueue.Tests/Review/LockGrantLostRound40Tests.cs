using ActorQueue.Coordination;
using ActorQueue.Primitives;
using ActorQueue.Tests.Primitives;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review round 40 of the lock's lost grant: the coordinator's gate grants a waiter that was cancelled at that instant,
/// the grant loses, and the gate gives the lock back (<c>PermitGate.Grant</c>: take, <c>Granting</c>, the waiter's
/// <c>TryGrant</c>, then the policy's <c>Refund</c>, then the listener's <c>GrantLost</c>). The refund frees the lock
/// word; with nobody else announced, a flow may take it on the fast path before <c>GrantLost</c> runs. The real gate,
/// the real <see cref="LockCoordinator"/> as its listener and the real <see cref="LockState"/> as its policy run here on
/// the test thread; the policy is wrapped only so that the racing flow's fast take lands exactly in that window.
/// </summary>
public sealed class LockGrantLostRound40Tests : ActorQueueTestKit
{
    /// <summary>
    /// A flow that takes the lock freed by a lost grant holds it: the coordinator's undo of the lost grant must not wipe
    /// the new holder, who must be able to release it, and the lock must end free.
    /// Failed before: <c>GrantLost</c> cleared the holder after the refund had freed the word, so the new holder was
    /// gone (<c>State.Owner</c> null while the word stayed held): its release threw <see cref="SynchronizationLockException"/>
    /// and the lock stayed held for ever (every later acquire waited).
    /// </summary>
    [Fact]
    public void A_flow_that_takes_the_lock_a_lost_grant_gave_back_keeps_it_and_can_release_it()
    {
        var state = new LockState();
        var coordinator = ActorOfAsTestActorRef<LockCoordinator>(LockCoordinator.Props(state)).UnderlyingActor;
        var newcomer = new object();
        var policy = new TakeAfterRefund(state, () =>
        {
            // The racing flow, as AsyncLock.AcquireAsync: the word is free and nobody is announced, so it takes it.
            Assert.True(state.TryTakeOrAnnounce());
            state.Grant(newcomer, 1);
        });
        var gate = new PermitGate(coordinator, [policy]);

        // A holder, and a waiter announced and queued behind it, which then cancels (its withdrawal still on its way).
        var holder = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(holder, 1);
        var cancelled = new RacingWaiter(new object());
        state.Announce();
        state.Sweep(gate);
        state.Offer(gate, cancelled);
        Assert.Equal(1, gate.Waiting);
        Assert.True(cancelled.TryCancel());

        // The holder's last release finds someone announced and nothing published: the coordinator frees and hands on.
        Assert.True(state.TryClaimRelease(holder, out var remaining));
        Assert.Equal(0, remaining);
        Assert.False(state.TryPassOn(holder));
        state.Clear();
        gate.Release(PermitDemand.One);

        Assert.Equal(1, policy.Refunds);
        Assert.True(state.IsHeld);
        Assert.Same(newcomer, state.Owner);
        Assert.True(state.IsHeldBy(newcomer));
        Assert.True(state.TryClaimRelease(newcomer, out remaining));
        Assert.Equal(0, remaining);
        Assert.True(state.TryPassOn(newcomer)); // nobody announced: it frees the word itself
        Assert.False(state.IsHeld);
        Assert.Equal(0, state.Announced);
    }

    /// <summary>The lock's policy, with <paramref name="racer"/> run once right after the first refund.</summary>
    private sealed class TakeAfterRefund(LockState inner, Action racer) : IPermitPolicy
    {
        public int Refunds { get; private set; }

        public PermitMeasure Measure => inner.Measure;

        public bool IsTimed => inner.IsTimed;

        public long Limit => inner.Limit;

        public long InUse => inner.InUse;

        public long Available(TimeSpan now) => inner.Available(now);

        public bool CanTake(long cost, TimeSpan now) => inner.CanTake(cost, now);

        public void Take(long cost, TimeSpan now) => inner.Take(cost, now);

        public void Refund(long cost, TimeSpan now)
        {
            inner.Refund(cost, now);
            if (++Refunds == 1)
            {
                racer();
            }
        }

        public void Release(long cost, TimeSpan now) => inner.Release(cost, now);

        public void Settle(long charged, long actual, TimeSpan now) => inner.Settle(charged, actual, now);

        public TimeSpan NextAvailableAt(long cost, TimeSpan now) => inner.NextAvailableAt(cost, now);

        public void Resize(long limit) => inner.Resize(limit);
    }
}
