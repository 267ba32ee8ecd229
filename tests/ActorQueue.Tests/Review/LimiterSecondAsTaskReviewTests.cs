using System.Diagnostics;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of d7c1ce0, through the public API: a <see cref="ConcurrencyLimiter.AcquireAsync(string, System.Threading.CancellationToken)"/>
/// ValueTask turned into a task twice (a misuse the second call reports with InvalidOperationException, as
/// ManualResetValueTaskSourceCore did) must leave the first task working. The hand-written FacadeWaiter.OnCompleted
/// overwrites the continuation state before it finds the slot taken, so the grant completes the refused second task:
/// the first never completes and its lease, held by a task nobody can see, is never released.
/// Fixed in 830f820: state and contexts are written only into an empty slot.
/// </summary>
public sealed class LimiterSecondAsTaskReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// A source nobody listens to. With the library's own one, a test tracing it in parallel (through OpenTelemetry's
    /// <c>AddSource</c>) made this acquire traced: its ValueTask is then a task's, whose second <c>AsTask</c> does not throw.
    /// </summary>
    private static readonly ActivitySource Untraced = new("review-second-astask-untraced");

    [Fact]
    public async Task The_first_task_of_an_acquire_gets_its_lease_after_a_second_AsTask_was_refused()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "review-second-astask", tracer: Untraced, system: Sys);
        var held = await Within(limiter.AcquireAsync("holder").AsTask());
        var pending = limiter.AcquireAsync("misused");
        var first = pending.AsTask();
        Assert.Throws<InvalidOperationException>(() => { _ = pending.AsTask(); });
        await Eventually(() => limiter.WaitingCount == 1, "the acquire is queued");

        held.Dispose();

        using var lease = await Within(first); // main: TimeoutException, the grant went to the refused task
        Assert.Equal(1, limiter.RunningCount);
    }
}
