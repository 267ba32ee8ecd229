using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A partition's lease numbers (<see cref="ConcurrencyLease.LeaseId"/>: "unique within the limiter that granted it")
/// keep counting up across its switches between the lean count and a gate. Failed before: the gate counted from 1 again
/// when it was made, and the lean count went on from its own last number when a sweep dropped the gate, so one key's
/// partition handed out the same number twice ("Expected: 2, Actual: 1" for the first lease the gate granted).
/// </summary>
public sealed class PartitionLeaseNumbersRound41Tests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task Lease_numbers_count_up_across_the_gate_being_made_and_dropped()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, $"lease-numbers-{Guid.NewGuid():N}", system: Sys);
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        var first = await Within(limiter.AcquireAsync("k").AsTask());
        var common = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 1 }, "a common caller waits in the lean FIFO");
        var urgent = limiter.AcquireAsync("k", priority: 1).AsTask(); // makes the gate
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "the priority caller waits in the gate");
        Assert.True(partitions.PartitionOf("k")!.HasGate);

        first.Dispose();
        var second = await Within(urgent);
        Assert.Equal(first.LeaseId + 1, second.LeaseId);
        second.Dispose();
        var third = await Within(common);
        Assert.Equal(second.LeaseId + 1, third.LeaseId);
        third.Dispose();

        // Nobody waits: a sweep drops the gate, and the lean count numbers on from the gate's last lease.
        _clock.Advance(IdleTimeout / 2);
        await Eventually(() => partitions.PartitionOf("k") is { HasGate: false } or null, "a sweep drops the empty gate");
        Assert.NotNull(partitions.PartitionOf("k")); // the same partition: not idle long enough to be dropped itself
        var fourth = limiter.AcquireAsync("k").AsTask();
        var waiting = limiter.AcquireAsync("k").AsTask(); // granted by the lean count, not claimed from the loan
        var fourthLease = await Within(fourth);
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 1 } || waiting.IsCompleted, "the next caller waits");
        fourthLease.Dispose();
        var fifth = await Within(waiting);
        Assert.True(fifth.LeaseId > third.LeaseId || fifth.LeaseId < 0, $"lease {fifth.LeaseId} after {third.LeaseId}: granted numbers count up, claimed ones are negative");
        if (fourthLease.LeaseId > 0)
        {
            Assert.True(fourthLease.LeaseId > third.LeaseId, $"lease {fourthLease.LeaseId} after {third.LeaseId}");
        }

        fifth.Dispose();
    }
}
