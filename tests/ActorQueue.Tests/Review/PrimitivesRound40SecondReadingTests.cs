using ActorQueue.Primitives;
using Akka.Actor;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A second reading of review round 40's primitive fixes: the cases next to the ones each fix tested, pinned so that a
/// later change cannot break them unnoticed. None failed on the merged code (each is a guard, not a defect found).
/// </summary>
public sealed class PrimitivesRound40SecondReadingTests : ActorQueueTestKit
{
    /// <summary>
    /// Nested scopes of one flow ended out of order (outer first): the lock stays held by the flow until the last
    /// level is given back, and is then free for another flow.
    /// </summary>
    [Fact]
    public async Task Nested_scopes_ended_out_of_order_free_the_lock_at_the_last_level_only()
    {
        using var gate = new AsyncLock(Sys);
        var outer = await gate.LockAsync();
        var inner = await gate.LockAsync();
        Assert.Equal(2, gate.State.Depth);

        await outer.DisposeAsync();
        Assert.True(gate.IsHeldByCurrentFlow);
        Assert.Equal(1, gate.State.Depth);

        await inner.DisposeAsync();
        await inner.DisposeAsync(); // a second end does nothing
        Assert.False(gate.IsLocked);
        Assert.True(await Within(InAnotherFlow(async () =>
        {
            var taken = await gate.AcquireAsync();
            gate.Release();
            return taken;
        })));
    }

    /// <summary>
    /// Another flow ends the owner's inner scope while the owner still holds its outer level: only that level goes, the
    /// owner still holds (a waiter stays waiting), and the owner's own end of the outer scope hands the lock on.
    /// </summary>
    [Fact]
    public async Task A_scope_ended_by_another_flow_takes_only_its_own_level_from_a_nested_hold()
    {
        using var gate = new AsyncLock(Sys);
        var outer = await gate.LockAsync();
        var inner = await gate.LockAsync();

        await Within(InAnotherFlow(async () => await inner.DisposeAsync()));
        Assert.True(gate.IsHeldByCurrentFlow);
        Assert.Equal(1, gate.State.Depth);

        var waiter = InAnotherFlow(async () =>
        {
            var taken = await gate.AcquireAsync();
            gate.Release();
            return taken;
        });
        await Eventually(() => gate.WaitingCount == 1, "the other flow waits behind the owner's outer level");
        Assert.False(waiter.IsCompleted);

        await outer.DisposeAsync();
        Assert.True(await Within(waiter));
        await Eventually(() => !gate.IsLocked, "the waiter released");
    }

    /// <summary>An Ask (a temporary actor as sender) to a disposed primitive's coordinator is answered <see cref="Refused"/>.</summary>
    [Fact]
    public async Task An_ask_to_a_disposed_primitive_is_refused()
    {
        var semaphore = new AsyncSemaphore(1, Sys);
        var coordinator = semaphore.Coordinator;
        await semaphore.DisposeAsync();

        var answer = await coordinator.Ask<object>(new Acquire(5), Dilated(TimeSpan.FromSeconds(10)));

        Assert.Equal(5, Assert.IsType<Refused>(answer).RequestId);
    }

    /// <summary>
    /// An actor waiting in a coordinator when its primitive is disposed is refused once, by the coordinator (the
    /// dead-letter responder never sees that Acquire): a second Acquire's refusal is the next message it gets.
    /// </summary>
    [Fact]
    public async Task A_waiting_actor_refused_at_disposal_is_refused_once()
    {
        var gate = new AsyncLock(Sys);
        await gate.AcquireAsync();
        var coordinator = gate.Coordinator;
        coordinator.Tell(new Acquire(1), TestActor);
        await Eventually(() => gate.WaitingCount == 1, "the actor waits");

        await gate.DisposeAsync();
        Assert.Equal(1, ExpectMsg<Refused>().RequestId);

        coordinator.Tell(new Acquire(2), TestActor);
        Assert.Equal(2, ExpectMsg<Refused>().RequestId);
    }

    /// <summary>A borrower whose first wait is still live is refused on a second ask, and its first wait is still served.</summary>
    [Fact]
    public async Task A_second_ask_while_the_first_wait_is_live_is_refused_and_the_first_is_served()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var holder = new object();
        var borrower = new object();
        await limiter.AcquireOnBehalfOfAsync(holder);
        var first = limiter.AcquireOnBehalfOfAsync(borrower);
        await Eventually(() => limiter.WaitingCount == 1, "the borrower's first ask waits");

        await Assert.ThrowsAsync<InvalidOperationException>(() => Within(limiter.AcquireOnBehalfOfAsync(borrower)));
        Assert.False(first.IsCompleted);

        limiter.ReleaseOnBehalfOf(holder);
        await Within(first);
        limiter.ReleaseOnBehalfOf(borrower);
    }

    /// <summary>A set event, once disposed, refuses a new wait with <see cref="ObjectDisposedException"/>.</summary>
    [Fact]
    public async Task A_wait_on_a_set_and_disposed_event_is_refused()
    {
        var @event = new AsyncEvent(Sys);
        @event.Set();
        await @event.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => { _ = @event.WaitAsync(); });
    }
}
