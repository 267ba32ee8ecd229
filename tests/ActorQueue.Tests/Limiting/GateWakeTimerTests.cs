using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gate's wake timer when the deadline it is armed for has already passed: the clock moved between the gate's
/// reckoning and the arming (a caller granted in a message, and a test's fake clock advanced before the message ended).
/// Written to test a suspected cause of <c>ModelApiLoanTests.Racing…(segments: 6)</c>'s rare stall: it passes, so a
/// timer set "due now" does fire without another clock move, and that cause is ruled out. Kept as a guard.
/// </summary>
public sealed class GateWakeTimerTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_deadline_already_passed_wakes_the_actor_without_another_clock_move()
    {
        var clock = new FakeTimeProvider();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1)], time: clock);
        var actor = CreateTestProbe();
        using var timer = new GateWakeTimer(clock, actor.Ref);

        clock.Advance(TimeSpan.FromMinutes(1)); // the clock moves after the gate reckoned its next deadline (a minute)
        timer.Arm(TimeSpan.FromMinutes(1), gate);

        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(10));
    }
}
