using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of branch partition-turns (TurnInbox): FIFO across a sweep's drop. The review's case: a caller that found
/// a key's partition just before a sweep dropped it pushed its request to the dropped partition while another caller
/// held that partition's turn (rerouting a request of its own); its call returned; a caller who came later found no
/// live partition and sent its request to the actor; the owner of the dropped turn sent the pushed request on only
/// when it got to it, after the later one, which was served first. That test failed on 4d5bf49. The fix seals a dropped
/// partition's turn in the sweep's own turn: nobody takes or pushes to it again, so a caller that found it sends its
/// request to the actor itself before its call returns, and what was pushed before the seal is rerouted by the sweep on
/// the actor's thread, ahead of the mailbox. The review's interleaving (a caller inside a dropped partition's turn)
/// cannot happen any more; these tests hold the seal and the order it gives.
/// </summary>
public sealed class DroppedPartitionRerouteOrderReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _clock = new();

    private async Task<Partition> Dropped(PartitionedConcurrencyLimiter<string> limiter, PartitionedGatekeeper partitions, string key)
    {
        (await Within(limiter.AcquireAsync(key).AsTask())).Dispose();
        var dropped = partitions.PartitionOf(key)!;
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return partitions.PartitionOf(key) is null; }, Patience, $"{key}'s partition was dropped");

        // A sweep takes the partition out of the table before it seals its turn, and counts the drop as on its way until
        // the seal's give-back is done: wait for that, so the drop is over.
        await Poll.UntilAsync(() => !partitions.IsRouting, Patience, $"the sweep that dropped {key}'s partition has given it back");
        return dropped;
    }

    [Fact]
    public async Task A_dropped_partitions_turn_is_sealed_so_nobody_can_leave_a_request_in_it()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, "sealed", system: Sys);
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        var dropped = await Dropped(limiter, partitions, "a");

        var late = new PartitionAcquireRequest("a", "late", partitions.Actor, signalQueued: false, permits: 1, priority: 0, timeout: null);

        Assert.True(dropped.IsSealed, "the sweep sealed the dropped partition's turn");
        Assert.False(dropped.Submit(late), "a sealed turn takes nothing: the caller must route the request itself");
        Assert.False(dropped.TryTake(), "nor can anyone take it");
        Assert.False(dropped.IsTaken);
    }

    [Fact]
    public async Task A_request_for_a_dropped_partition_is_served_before_a_request_sent_after_its_call_returned()
    {
        var name = $"review-reroute-{Guid.NewGuid():N}";
        using var hold = new ActorHold(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        var dropped = await Dropped(limiter, partitions, "a");

        // On a thread of its own (not a pool thread, where the actor would run inline and the hold stop the test).
        var barged = await Task.Factory.StartNew(() => Scenario(limiter, partitions, dropped, hold), CancellationToken.None,
                                                 TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Assert.False(barged, "the later caller, whose call began after the earlier one's returned, was served first");
    }

    private static bool Scenario(PartitionedConcurrencyLimiter<string> limiter, PartitionedGatekeeper partitions, Partition dropped, ActorHold hold)
    {
        // The actor is held in the middle of another key's grant: what is sent meanwhile waits in its mailbox.
        hold.Arm();
        var other = limiter.AcquireAsync("b", source: "other").AsTask();
        hold.WaitHeld("the actor granting b's request");

        // A caller that found a's partition before its drop, and a caller who comes after its call returned.
        var earlier = new PartitionAcquireRequest("a", "earlier", partitions.Actor, signalQueued: false, permits: 1, priority: 0, timeout: null);
        partitions.Dispatch(earlier, dropped);
        var earlierTask = earlier.Completion.AsTask();
        var later = limiter.AcquireAsync("a", source: "later").AsTask();
        Assert.False(earlierTask.IsCompleted);
        Assert.False(later.IsCompleted);

        hold.Release();
        Assert.True(other.Wait(Patience), "b's request is granted");
        other.Result.Dispose();
        var both = new List<Task<ConcurrencyLease>> { earlierTask, later };
        var servedFirst = Task.WaitAny([.. both], Patience);
        Assert.True(servedFirst >= 0, "one of them is served");
        var barged = both[servedFirst] == later;
        both[servedFirst].Result.Dispose();
        both.RemoveAt(servedFirst);
        Assert.True(both[0].Wait(Patience), "the other is served once the first gives its permit back");
        both[0].Result.Dispose();
        return barged;
    }
}
