using ActorQueue.Actors;
using ActorQueue.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of branch partition-turns (TurnInbox): an exception inside a turn. TurnInbox.Submit and GiveBack
/// run Taken, Run and Resting without a finally, so an op that throws (here a metrics listener of the waiting count,
/// which .NET calls synchronously on the thread in the turn) leaves the turn taken for ever: every later op of the
/// partition is pushed and never run, its callers hang, and DisposeAsync never completes (its PartitionClose is pushed
/// too) — against "every dispose completes promptly whatever state". FAILED on branch partition-turns at 4d5bf49 (the
/// next request of the key was never answered); passes since a394e78 (faults are contained in the turn).
/// </summary>
public sealed class PartitionTurnWedgedByExceptionReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task An_exception_inside_a_partitions_turn_does_not_wedge_the_partition_or_the_dispose()
    {
        var name = $"review-wedge-{Guid.NewGuid():N}";
        var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        using var thrower = new ThrowingListener(name);
        try
        {
            (await Within(limiter.AcquireAsync("a").AsTask())).Dispose();
            var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
            var partition = partitions.PartitionOf("a")!;
            // The first call went by the actor: its grant completes in the partition's first turn, before that turn lends
            // and is given back and before the actor counts the call off (claims are refused until then). The holder must
            // claim from the loan and the unlucky caller take the free turn here, so wait for all three.
            await Eventually(() => !partitions.IsRouting && !partition.IsTaken && partition.Loan.Covers(1),
                             "a's partition lends its permit, its turn is free and nothing is on its way to the actor");
            var holder = await limiter.AcquireAsync("a", source: "holder"); // claimed from the loan: no turn, no count moved

            // The next caller takes the turn and queues behind the holder; the waiting count's listener throws. The fix
            // (a394e78): the throw is logged and the turn goes on; the caller waits as it should. (This test armed the
            // running count's listener, for the reclaim's count of the claimed permit, until claims were metered on the
            // claimer's thread.)
            thrower.Arm();
            var unlucky = limiter.AcquireAsync("a", source: "unlucky").AsTask();
            Assert.True(thrower.Threw, "the listener threw inside the turn");
            Assert.False(unlucky.IsCompleted, "the permit is held: the unlucky caller waits");

            holder.Dispose();
            (await Within(unlucky)).Dispose();
            var next = limiter.AcquireAsync("a", source: "next").AsTask();
            (await Within(next)).Dispose();
            await Within(limiter.DisposeAsync().AsTask());
        }
        finally
        {
            limiter.Dispose(); // never awaited here: on the branch its close is pushed to the wedged turn
        }
    }

    /// <summary>Throws once, when armed, from the waiting count's listener of one limiter.</summary>
    private sealed class ThrowingListener : IDisposable
    {
        private readonly ArmedMeasurement _hook;
        private int _threw;

        public ThrowingListener(string limiterName) =>
            _hook = new ArmedMeasurement(limiterName, ActorQueueTelemetry.LimiterWaiting, () =>
            {
                Volatile.Write(ref _threw, 1);
                throw new InvalidOperationException("a metrics listener failed");
            });

        public void Arm() => _hook.Arm();

        /// <summary>Whether it has thrown.</summary>
        public bool Threw => Volatile.Read(ref _threw) == 1;

        public void Dispose() => _hook.Dispose();
    }
}
