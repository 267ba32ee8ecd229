using ActorQueue.Primitives;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// A flow's identity for a primitive lives in the flow's ExecutionContext only while the flow holds the primitive:
/// one long-lived flow that uses many locks or capacity limiters one after another carries none of them once they
/// are released or disposed. Each test runs in its own test method's flow, which is the long-lived flow.
/// </summary>
public sealed class FlowIdentityTests : ActorQueueTestKit
{
    /// <summary>How many primitives one flow goes through (the issue saw quadratic slow-down from 5,000 on).</summary>
    private const int ManyPrimitives = 20_000;

    /// <summary>
    /// Collects garbage until none of <paramref name="tokens"/> is reachable. Once the coordinators have handled the
    /// releases and stopped, the only thing that could still hold a token is the test's flow: its ExecutionContext.
    /// </summary>
    private Task NoneReachable(List<WeakReference> tokens) =>
        Poll.UntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return tokens.All(token => !token.IsAlive);
        }, Dilated(TimeSpan.FromSeconds(10)), () => $"no token is reachable ({tokens.Count(token => token.IsAlive)} of {tokens.Count} still are)",
        TimeSpan.FromMilliseconds(10));

    /// <summary>
    /// A flow that neither holds nor asks forgets its token; while a waiter made for the token is unanswered the flow
    /// keeps it, for its next acquire and across a release, and forgets it once the waiter is answered. (Catches
    /// <c>Forget</c> or <c>ForAcquire</c> ignoring the ask: the lock's reentry granted after the flow's last release went
    /// to an identity the flow no longer carried.)
    /// </summary>
    [Fact]
    public void A_flow_keeps_its_identity_while_an_acquire_of_its_own_is_unanswered()
    {
        var identity = new FlowIdentity(_ => false);
        var token = identity.ForAcquire();
        identity.Forget(token);
        Assert.Null(identity.Current);

        token = identity.ForAcquire();
        var waiter = new PrimitiveWaiter(ActorRefs.Nobody, token);
        Assert.Same(token, identity.ForAcquire());
        identity.Forget(token);
        Assert.Same(token, identity.Current);

        waiter.Fail(new InvalidOperationException("answered"));
        identity.Forget(token);
        Assert.Null(identity.Current);
        Assert.NotSame(token, identity.ForAcquire());
    }

    [Fact]
    public async Task A_lock_released_by_its_flow_leaves_no_identity_in_the_flow()
    {
        using var @lock = new AsyncLock(Sys);
        await using (await @lock.LockAsync())
        {
            await using (await @lock.LockAsync())
            {
                Assert.NotNull(@lock.Identity.Current);
            }

            Assert.NotNull(@lock.Identity.Current); // still held once: the flow keeps its identity for the outer release
        }

        Assert.Null(@lock.Identity.Current);
    }

    [Fact]
    public async Task A_lock_disposed_while_held_leaves_no_identity_in_the_flow()
    {
        var @lock = new AsyncLock(Sys);
        await @lock.AcquireAsync();

        await @lock.DisposeAsync();

        Assert.Null(@lock.Identity.Current);
    }

    [Fact]
    public async Task Twenty_thousand_locks_used_and_disposed_in_one_flow_leave_nothing_behind()
    {
        var tokens = new List<WeakReference>(ManyPrimitives);
        for (var i = 0; i < ManyPrimitives; i++)
        {
            var @lock = new AsyncLock(Sys);
            await using (await @lock.LockAsync())
            {
                tokens.Add(new WeakReference(@lock.Identity.Current));
            }

            Assert.Null(@lock.Identity.Current);
            @lock.Dispose();
        }

        await NoneReachable(tokens);
    }

    [Fact]
    public async Task A_capacity_limiter_released_by_its_flow_leaves_no_identity_in_the_flow()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        await limiter.AcquireAsync();
        limiter.Release();
        Assert.Null(limiter.Identity.Current);

        await using (await limiter.LockAsync())
        {
            Assert.NotNull(limiter.Identity.Current);
        }

        Assert.Null(limiter.Identity.Current);
    }

    [Fact]
    public async Task Twenty_thousand_capacity_limiters_used_and_disposed_in_one_flow_leave_nothing_behind()
    {
        var tokens = new List<WeakReference>(ManyPrimitives);
        for (var i = 0; i < ManyPrimitives; i++)
        {
            var limiter = new AsyncCapacityLimiter(1, Sys);
            await limiter.AcquireAsync();
            tokens.Add(new WeakReference(limiter.Identity.Current));
            limiter.Release();
            limiter.Dispose();
        }

        await NoneReachable(tokens);
    }

    [Fact]
    public async Task A_condition_wait_keeps_the_flows_identity_and_the_last_release_drops_it()
    {
        using var condition = new AsyncCondition(system: Sys);
        await condition.AcquireAsync();
        var identity = condition.Lock.Identity.Current;
        var waiting = condition.WaitAsync();
        await InAnotherFlow(async () =>
        {
            await using (await condition.LockAsync())
            {
                await condition.NotifyAsync();
            }
        });

        await Within(waiting);
        Assert.Same(identity, condition.Lock.Identity.Current); // it waited with the lock's identity and got it back
        condition.Release();
        Assert.Null(condition.Lock.Identity.Current);
    }
}
