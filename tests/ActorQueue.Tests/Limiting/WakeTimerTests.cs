using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gate's wake timer: a deadline already passed wakes at once; a clock that moves between the timer's reading it
/// and setting from it does not set the wake late by the move (a fake clock advanced by a test's thread stalled
/// <c>ModelApiLoanTests.Racing…</c> in CI: its wake was set a minute late, and the test waited for grants before it
/// moved the clock again); a wake that came before its deadline is set again for the same deadline.
/// </summary>
public sealed class WakeTimerTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_deadline_already_passed_wakes_the_actor_without_another_clock_move()
    {
        var clock = new FakeTimeProvider();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1)], time: clock);
        var actor = CreateTestProbe();
        using var timer = new WakeTimer(clock, actor.Ref, () => gate.Now);

        clock.Advance(Minute); // the clock moves after the gate reckoned its next deadline (a minute)
        timer.Arm(Minute);

        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_clock_that_moves_between_the_read_and_the_set_does_not_make_the_wake_late()
    {
        var clock = new MovedAfterReadClock();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1)], time: clock);
        var actor = CreateTestProbe();
        using var timer = new WakeTimer(clock, actor.Ref, () => gate.Now);

        // The timer reads 0 and sets itself a minute ahead; the clock reaches the deadline in between.
        clock.MoveAfterNextRead(Minute);
        timer.Arm(Minute);

        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_wake_handled_is_set_again_for_the_same_deadline_and_only_then()
    {
        var clock = new FakeTimeProvider();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1)], time: clock);
        var actor = CreateTestProbe();
        using var timer = new WakeTimer(clock, actor.Ref, () => gate.Now);
        timer.Arm(Minute);
        clock.Advance(Minute);
        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(10));

        // Asked again before the actor handled the wake: set already, no second wake.
        timer.Arm(Minute);
        await actor.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));

        // Once handled, the same deadline (the gate found nobody due: the wake came early) sets the timer again.
        timer.Fired();
        timer.Arm(Minute);
        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task It_tells_the_message_it_was_given()
    {
        var clock = new FakeTimeProvider();
        var actor = CreateTestProbe();
        using var timer = new WakeTimer(clock, actor.Ref, () => TimeSpan.FromTicks(clock.GetUtcNow().UtcTicks), "due");
        timer.Arm(TimeSpan.FromTicks(clock.GetUtcNow().UtcTicks) + Minute);

        clock.Advance(Minute - TimeSpan.FromTicks(1));
        await actor.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
        clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal("due", await actor.ExpectMsgAsync<string>(TimeSpan.FromSeconds(10)));
    }
}
