using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>A work queue's own slot count, driven directly: the cap read at each entry, and no waiter left behind by a slot freed as it waits.</summary>
[Collection(ChannelStress.Name)]
public class QueueSlotsTests
{
    /// <summary>A limiter that only reports its size.</summary>
    private sealed class SizedLimiter(int maxRunning) : IConcurrencyLimiter
    {
        public string? Name => "sized";

        public int MaxRunning { get; set; } = maxRunning;

        public int? MaxQueued => null;

        public int RunningCount => 0;

        public int WaitingCount => 0;

        public int AvailableCount => MaxRunning;

        public ValueTask<ConcurrencyLease> AcquireAsync(string source = "unnamed", CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("the slots never ask the limiter for a permit");
    }

    [Fact]
    public async Task Slots_follow_the_limiters_size_and_a_shrink_asks_holders_to_let_go()
    {
        var limiter = new SizedLimiter(2);
        var slots = new QueueSlots(limiter);
        await slots.EnterAsync(CancellationToken.None);
        await slots.EnterAsync(CancellationToken.None);
        var third = slots.EnterAsync(CancellationToken.None).AsTask();
        Assert.False(third.IsCompleted);

        limiter.MaxRunning = 1;
        Assert.True(slots.ShouldLetGo);
        slots.Exit();
        Assert.False(third.IsCompleted); // one held is still the whole of the new size
        slots.Exit();
        await third.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, slots.Held);
        Assert.Equal(0, slots.Waiting);
    }

    [Fact]
    public async Task A_cancelled_waiter_holds_no_slot()
    {
        var slots = new QueueSlots(new SizedLimiter(1));
        await slots.EnterAsync(CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var waiter = slots.EnterAsync(cancel.Token).AsTask();

        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter);
        Assert.Equal((1, 0), (slots.Held, slots.Waiting));
    }

    [Fact]
    public void A_slot_freed_while_a_worker_starts_waiting_for_it_is_never_missed()
    {
        var (broken, first) = Race.Rounds(
            rounds: 20_000,
            setup: _ =>
            {
                var slots = new QueueSlots(new SizedLimiter(1));
                Assert.True(slots.EnterAsync(CancellationToken.None).IsCompleted);
                return new Round(slots);
            },
            first: round => round.Slots.Exit(),
            second: round => round.Waiter = round.Slots.EnterAsync(CancellationToken.None).AsTask(),
            holds: round => round.Waiter!.Wait(TimeSpan.FromSeconds(10)) && round.Slots.Held == 1
                ? null
                : $"the waiter {(round.Waiter!.IsCompleted ? "entered" : "still waits")}, {round.Slots.Held} held");

        Assert.True(broken == 0, $"{broken} rounds left a waiter behind a free slot; first: {first}");
    }

    private sealed class Round(QueueSlots slots)
    {
        public QueueSlots Slots { get; } = slots;

        public Task? Waiter { get; set; }
    }
}
