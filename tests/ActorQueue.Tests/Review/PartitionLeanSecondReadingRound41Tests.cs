using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A second, adversarial reading of a partition's lean FIFO (round 41, commit 7db8524): where a partition whose
/// callers wait without a <c>PermitGate</c> could behave differently from one whose callers wait in its gate (the
/// reference). Each test names whether it failed on the code as the change left it.
/// </summary>
public sealed class PartitionLeanSecondReadingRound41Tests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);

    private static (PartitionedConcurrencyLimiter<string> Limiter, string Name) NewLimiter(ActorQueueTestKit kit, int maxRunning, int? maxQueued = null,
                                                                                           QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
    {
        var name = $"lean-second-{Guid.NewGuid():N}";
        return (new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, WhenFull = whenFull }, IdleTimeout, name, system: kit.Sys), name);
    }

    private static PartitionedGatekeeper PartitionsOf(PartitionedConcurrencyLimiter<string> limiter) => ((IPartitionedLimiter<string>)limiter).Partitions;

    /// <summary>
    /// The request that makes the gate takes the lean waiters over without the published waiting count (and the
    /// limiter's waiting meter) dropping as if they had left: only the newcomer is added, as a gate that had them
    /// queued all along adds it.
    /// Failed before: the waiting meter recorded [-1, +1, +1] (each requeue published the gate's partial count, 1 of 2
    /// waiters) where a gate records [+1].
    /// </summary>
    [Fact]
    public async Task Making_the_gate_moves_the_lean_waiters_without_the_waiting_count_dipping()
    {
        var (limiter, name) = NewLimiter(this, maxRunning: 1);
        await using var _ = limiter;
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var first = limiter.AcquireAsync("k").AsTask();
        var second = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "two common callers wait lean");
        var partition = PartitionsOf(limiter).PartitionOf("k")!;
        Assert.False(partition.HasGate);

        var deltas = new List<int>();
        var seenWaiting = new List<int>();
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == ActorQueueTelemetry.LimiterWaiting)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Value is string tagged && tagged.Contains(name, StringComparison.Ordinal))
                    {
                        lock (deltas)
                        {
                            deltas.Add(value);
                            seenWaiting.Add(partition.Waiting);
                        }
                    }
                }
            });
            listener.Start();

            var urgent = limiter.AcquireAsync("k", priority: 5).AsTask();
            await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 3 }, "the priority caller waits in the gate");
            Assert.True(partition.HasGate);
            lock (deltas)
            {
                Assert.Equal([1], deltas);
                Assert.All(seenWaiting, waiting => Assert.True(waiting >= 2, $"a statistics read saw {waiting} waiting while 2 or 3 waited"));
            }

            held.Dispose();
            (await Within(urgent)).Dispose();
        }

        (await Within(first)).Dispose();
        (await Within(second)).Dispose();
    }

    /// <summary>
    /// The limiter stops: the partition publishes that nobody waits before it tells any waiter it failed, lean or in a
    /// gate (a gate's <c>RejectAll</c> takes them all out and publishes first), as every count is published before a
    /// waiter hears.
    /// Failed before (lean only): the first failed waiter read 2 waiting.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposal_publishes_that_nobody_waits_before_a_waiter_hears(bool gate)
    {
        var (limiter, _) = NewLimiter(this, maxRunning: 1);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var partitions = PartitionsOf(limiter);
        var partition = partitions.PartitionOf("k")!;
        var priority = gate ? 1 : 0;
        var first = new RecordingRequest(partition, partitions.Actor, priority);
        var second = new RecordingRequest(partition, partitions.Actor, priority);
        var firstWait = partitions.Send(first, CancellationToken.None, partition).AsTask();
        var secondWait = partitions.Send(second, CancellationToken.None, partition).AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "two callers wait");
        Assert.Equal(gate, partition.HasGate);

        await limiter.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(firstWait));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(secondWait));
        Assert.Equal((0, 0L), (first.WaitingWhenFailed, first.QueuedWhenFailed));
        Assert.Equal((0, 0L), (second.WaitingWhenFailed, second.QueuedWhenFailed));
        held.Dispose();
    }

    /// <summary>
    /// Guard (passed before): a full lean queue under <see cref="QueueFullMode.EvictLowestPriorityNewest"/> makes room
    /// for a higher-priority newcomer by evicting its newest waiter, as the gate does, and the older one is served after
    /// the newcomer.
    /// </summary>
    [Fact]
    public async Task A_full_lean_queue_evicts_its_newest_waiter_for_a_higher_priority_newcomer()
    {
        var (limiter, _) = NewLimiter(this, maxRunning: 1, maxQueued: 2, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        await using var _ = limiter;
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var oldest = limiter.AcquireAsync("k").AsTask();
        var newest = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "the lean queue is full");
        Assert.False(PartitionsOf(limiter).PartitionOf("k")!.HasGate);

        var urgent = limiter.AcquireAsync("k", priority: 1).AsTask();
        var evicted = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(newest));
        Assert.True(evicted.IsEviction, "the newest lean waiter was evicted, not refused");
        Assert.Equal(2, limiter.StatisticsOf("k")!.Waiting);
        Assert.False(oldest.IsCompleted);

        held.Dispose();
        var urgentLease = await Within(urgent);
        Assert.False(oldest.IsCompleted, "the newcomer of higher priority is served first");
        urgentLease.Dispose();
        (await Within(oldest)).Dispose();
    }

    /// <summary>
    /// Guard (passed before): a lean front cancelled at the instant it is granted takes nothing; the permit goes on to
    /// the waiter behind it in the same step, and the counts say so.
    /// </summary>
    [Fact]
    public async Task A_lean_front_cancelled_as_it_is_granted_passes_the_permit_to_the_next()
    {
        var (limiter, _) = NewLimiter(this, maxRunning: 1);
        await using var _ = limiter;
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var partitions = PartitionsOf(limiter);
        var partition = partitions.PartitionOf("k")!;
        var (frontWait, next) = await QueueWithOneBehindAsync(limiter, new CancelledAtGrantRequest(partitions.Actor));
        Assert.False(partition.HasGate);

        held.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(frontWait));
        var lease = await Within(next);
        Assert.Equal((1, 0, 0L), (limiter.StatisticsOf("k")!.Running, limiter.StatisticsOf("k")!.Waiting, partition.Queued));
        lease.Dispose();
        await Eventually(() => limiter.StatisticsOf("k") is { Running: 0, Waiting: 0 }, "the permit came back");
    }

    /// <summary>
    /// Guard (passed before): a lean waiter cancelled whose withdrawal is still on its way when a priority caller makes
    /// the gate goes over with the others and leaves the gate when its withdrawal runs; the counts then drop by it and
    /// the callers behind it are served in order, none passed by it or left behind.
    /// </summary>
    [Fact]
    public async Task A_lean_waiter_cancelled_as_the_gate_is_made_leaves_the_gate_on_its_withdrawal()
    {
        var (limiter, _) = NewLimiter(this, maxRunning: 1);
        await using var _ = limiter;
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var partitions = PartitionsOf(limiter);
        var partition = partitions.PartitionOf("k")!;
        var cancelled = new QuietlyCancelledRequest(partitions.Actor);
        var (cancelledWait, behind) = await QueueWithOneBehindAsync(limiter, cancelled);

        cancelled.CancelWithoutTelling(); // its withdrawal not yet delivered
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelledWait));
        var urgent = limiter.AcquireAsync("k", priority: 5).AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 3 }, "the withdrawn waiter still counts until its withdrawal runs, as in a gate");
        Assert.True(partition.HasGate);

        Assert.True(partition.Submit(new PartitionWithdraw(cancelled)));
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 } && partition.Queued == 2, "the withdrawal took it out of the gate");
        held.Dispose();
        var urgentLease = await Within(urgent);
        Assert.False(behind.IsCompleted);
        urgentLease.Dispose();
        (await Within(behind)).Dispose();
        await Eventually(() => limiter.StatisticsOf("k") is { Running: 0, Waiting: 0 } && partition.Queued == 0, "everything came back");
    }

    /// <summary>Guard (passed before): with <c>MaxQueued = 0</c> a common caller that must wait is refused (the lean FIFO never queues past the bound), and nobody counts as waiting.</summary>
    [Fact]
    public async Task With_no_room_to_queue_a_common_caller_that_must_wait_is_refused()
    {
        var (limiter, _) = NewLimiter(this, maxRunning: 1, maxQueued: 0);
        await using var _ = limiter;
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var refused = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync("k").AsTask()));
        Assert.False(refused.IsEviction);
        Assert.Equal((1, 0), (limiter.StatisticsOf("k")!.Running, limiter.StatisticsOf("k")!.Waiting));
        held.Dispose();
    }

    /// <summary>Queues <paramref name="request"/> for key "k" (whose permit is held), then a common caller behind it, and waits until both wait.</summary>
    private async Task<(Task<ConcurrencyLease> Own, Task<ConcurrencyLease> Behind)> QueueWithOneBehindAsync(PartitionedConcurrencyLimiter<string> limiter, PartitionAcquireRequest request)
    {
        var partitions = PartitionsOf(limiter);
        var own = partitions.Send(request, CancellationToken.None, partitions.PartitionOf("k")).AsTask();
        var behind = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "two callers wait");
        return (own, behind);
    }

    /// <summary>A request that reads its partition's published counts as it is failed (what a caller resumed at once would read).</summary>
    private sealed class RecordingRequest(Partition partition, Akka.Actor.IActorRef server, int priority)
        : PartitionAcquireRequest("k", "recording", server, signalQueued: false, permits: 1, priority, timeout: null)
    {
        public int WaitingWhenFailed { get; private set; } = -1;

        public long QueuedWhenFailed { get; private set; } = -1;

        public override void Fail(Exception error)
        {
            (WaitingWhenFailed, QueuedWhenFailed) = (partition.Waiting, partition.Queued);
            base.Fail(error);
        }
    }

    /// <summary>A request its caller cancels without the partition being told yet (its withdrawal still on its way).</summary>
    private sealed class QuietlyCancelledRequest(Akka.Actor.IActorRef server)
        : PartitionAcquireRequest("k", "quietly-cancelled", server, signalQueued: false, permits: 1, priority: 0, timeout: null)
    {
        public void CancelWithoutTelling() => Assert.True(TryCancel(new CancellationToken(canceled: true)));
    }

    /// <summary>A request whose caller cancels at the very instant it is granted.</summary>
    private sealed class CancelledAtGrantRequest(Akka.Actor.IActorRef server)
        : PartitionAcquireRequest("k", "cancelled-at-grant", server, signalQueued: false, permits: 1, priority: 0, timeout: null)
    {
        public override bool TryGrant(in PermitGrant grant)
        {
            TryCancel(new CancellationToken(canceled: true));
            return base.TryGrant(grant);
        }
    }
}
