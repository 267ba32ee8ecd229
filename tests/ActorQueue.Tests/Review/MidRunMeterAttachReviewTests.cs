using ActorQueue.Actors;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Limiting;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the meters skipping instruments nobody listens to (GatekeeperTelemetry.Meter): a listener that attaches
/// while a limiter holds leases and has waiters must see its running and waiting counters move by exactly what changed
/// after it attached, through granting releases and the loan's claims and returns.
/// </summary>
public sealed class MidRunMeterAttachReviewTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_listener_attached_mid_run_sums_the_changes_since_it_attached()
    {
        var name = $"review-mid-run-{Guid.NewGuid():N}";
        using var limiter = new ConcurrencyLimiter(2, name: name, system: Sys);
        var h1 = await Within(limiter.AcquireAsync("h1").AsTask());
        var h2 = await Within(limiter.AcquireAsync("h2").AsTask());
        var a = limiter.AcquireAsync("a").AsTask();
        var b = limiter.AcquireAsync("b").AsTask();
        await Eventually(() => limiter.WaitingCount == 2 && limiter.RunningCount == 2, "two hold, two wait");

        using var metrics = new LimiterMetrics(name); // attaches now: 2 running, 2 waiting
        h1.Dispose(); // grants a
        var leaseA = await Within(a);
        h2.Dispose(); // grants b
        var leaseB = await Within(b);
        await Eventually(() => limiter.WaitingCount == 0 && limiter.RunningCount == 2, "a and b hold");
        leaseA.Dispose();
        leaseB.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "nothing held");
        (await Within(limiter.AcquireAsync("c").AsTask())).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "nothing held after c");
        await Eventually(
            () => metrics.Value(ActorQueueTelemetry.LimiterRunning) == -2 && metrics.Value(ActorQueueTelemetry.LimiterWaiting) == -2,
            $"the counters moved by -2/-2 since the listener attached (running {metrics.Value(ActorQueueTelemetry.LimiterRunning)}, waiting {metrics.Value(ActorQueueTelemetry.LimiterWaiting)})");
        Assert.Equal(3.0, metrics.Value(ActorQueueTelemetry.LimiterAcquired)); // a, b and c
    }
}
