using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of branch partition-turns (PartitionInbox): FIFO across a sweep's drop. A caller that found a key's partition
/// just before a sweep dropped it submits its request to the dropped partition, whose turn another caller holds while
/// it reroutes a request of its own; the call returns (the request is pushed). A caller who comes later finds no live
/// partition and sends its request to the actor. The owner of the dropped partition's turn sends the pushed request to
/// the actor only when it gets to it (PartitionShared.Reroute sends it from any thread but the actor's), after the later
/// request: the later caller is served first. FAILS on branch partition-turns at 4d5bf49.
/// The owner is held inside its turn deterministically: its reroute's Tell runs the idle actor inline on its pool
/// thread (the coordinator dispatcher's caller-runs executor), and <see cref="ActorHold"/> holds that run as the actor
/// grants the rerouted request, before it publishes the key's next partition.
/// </summary>
public sealed class DroppedPartitionRerouteOrderReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task A_request_pushed_to_a_dropped_partition_is_served_before_a_request_sent_after_its_call_returned()
    {
        var name = $"review-reroute-{Guid.NewGuid():N}";
        using var hold = new ActorHold(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;

        // The owner must be held inside the dropped partition's turn, which needs the actor idle when it reroutes (else
        // the actor runs on its own thread): try a few keys until one is set up so.
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var key = $"a{attempt}";
            (await Within(limiter.AcquireAsync(key).AsTask())).Dispose();
            var dropped = partitions.PartitionOf(key)!;
            await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return partitions.PartitionOf(key) is null; }, Patience, $"{key}'s partition was dropped");
            await Eventually(() => !dropped.IsTaken, "the sweep gave the dropped partition's turn back");

            var outcome = await Task.Factory.StartNew(() => Scenario(limiter, partitions, dropped, key, hold), CancellationToken.None,
                                                      TaskCreationOptions.LongRunning, TaskScheduler.Default);
            if (outcome is { } barged)
            {
                Assert.False(barged, "the later caller, whose call began after the pushed request's call returned, was served first");
                return;
            }
        }

        Assert.Fail("the owner of the dropped partition's turn was never held inside it (the actor was never idle)");
    }

    /// <returns>Whether the later request was served first; <c>null</c> when the owner was not held inside the dropped partition's turn.</returns>
    private static bool? Scenario(PartitionedConcurrencyLimiter<string> limiter, PartitionedGatekeeper partitions, Partition dropped, string key, ActorHold hold)
    {
        // A pool thread takes the dropped partition's turn with a request of its own and reroutes it: the actor runs on it.
        var rerouted = new PartitionAcquireRequest(key, "rerouted", partitions.Actor, signalQueued: false, permits: 1, priority: 0, timeout: null);
        var ownerThread = 0;
        hold.Arm();
        var owner = Task.Run(() =>
        {
            ownerThread = Environment.CurrentManagedThreadId;
            dropped.Submit(rerouted);
        });
        hold.WaitHeld("the actor granting the rerouted request");
        var inside = hold.HeldThreadId == Volatile.Read(ref ownerThread) && dropped.IsTaken;

        // A caller that found the partition before the drop: pushed, and its call returns.
        var earlier = inside ? new PartitionAcquireRequest(key, "earlier", partitions.Actor, signalQueued: false, permits: 1, priority: 0, timeout: null) : null;
        if (earlier is not null)
        {
            dropped.Submit(earlier);
        }

        var earlierTask = earlier?.Completion.AsTask();
        Assert.True(earlierTask is null || !earlierTask.IsCompleted);

        // A later caller finds no live partition: its request goes to the actor's mailbox.
        var later = inside ? limiter.AcquireAsync(key, source: "later").AsTask() : null;

        hold.Release();
        Assert.True(owner.Wait(Patience), "the owner finished its turn");
        var first = rerouted.Completion.AsTask();
        Assert.True(first.Wait(Patience), "the rerouted request is granted");
        if (earlierTask is null || later is null)
        {
            first.Result.Dispose();
            return null;
        }

        // The key's next partition holds its one permit for the rerouted request; both others wait. Release it.
        first.Result.Dispose();
        var both = new List<Task<ConcurrencyLease>> { earlierTask, later };
        var servedFirst = Task.WaitAny([.. both], Patience);
        Assert.True(servedFirst >= 0, "one of them is served");
        var barged = both[servedFirst] == later;
        both[servedFirst].Result.Dispose();
        both.RemoveAt(servedFirst);
        Assert.True(both[0].Wait(Patience), "the other is served next");
        both[0].Result.Dispose();
        return barged;
    }
}
