using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of branch partition-turns (TurnInbox): FIFO within a partition ("FIFO within one priority", README "no
/// barging") for a request that found no live partition and went to the actor. Its call has returned; while it waits in
/// the actor's mailbox the actor publishes the key's partition (made for an earlier request). A lease released now runs
/// in the partition's turn on the releaser's thread (before, it was a message behind the waiting request), so the
/// partition lends the permit and a caller who came later claims it, passing the request still in the mailbox.
/// FAILS on branch partition-turns at 4d5bf49 (the later caller completes at once); the parent commit, where a release
/// was a message to the actor, serves the earlier request first.
/// </summary>
public sealed class PartitionPublishedPastMailboxReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task A_later_caller_never_passes_an_earlier_request_still_in_the_actors_mailbox_when_the_partition_is_published()
    {
        var name = $"review-mailbox-{Guid.NewGuid():N}";
        using var hold = new ActorHold(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);

        // On a thread of its own, not a pool thread: the coordinator dispatcher would run the actor inline on a pool
        // thread's Tell, and the hold would then stop the test itself.
        var barged = await Task.Factory.StartNew(() => Scenario(limiter, hold), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Assert.False(barged, "a caller that came after the earlier request's call had returned got the partition's only permit first (barging)");
    }

    private static bool Scenario(PartitionedConcurrencyLimiter<string> limiter, ActorHold hold)
    {
        // The actor makes a's partition for the first request and is held as it counts the grant, before it publishes it.
        hold.Arm();
        var first = limiter.AcquireAsync("a", source: "first").AsTask();
        hold.WaitHeld("the actor granting the first request of a");

        // Both go to the actor's mailbox: b's request, then the earlier request of a (a has no live partition yet).
        var other = limiter.AcquireAsync("b", source: "other").AsTask();
        var earlier = limiter.AcquireAsync("a", source: "earlier").AsTask();

        // Let the actor publish a's partition and hold it again on b's grant: the earlier request is still in its mailbox.
        hold.Arm();
        hold.Release();
        hold.WaitHeld("the actor granting b's request");
        Assert.True(first.Wait(Patience), "the first request of a is granted");
        Assert.NotNull(((IPartitionedLimiter<string>)limiter).Partitions.PartitionOf("a"));
        Assert.False(earlier.IsCompleted);

        first.Result.Dispose();
        var later = limiter.AcquireAsync("a", source: "later").AsTask();
        var barged = later.IsCompleted && !earlier.IsCompleted;

        hold.Release();
        Assert.True(other.Wait(Patience));
        other.Result.Dispose();
        var both = new List<Task<ConcurrencyLease>> { earlier, later };
        while (both.Count > 0)
        {
            var done = Task.WaitAny([.. both], Patience);
            Assert.True(done >= 0, "the earlier and the later request are both served in the end");
            both[done].Result.Dispose();
            both.RemoveAt(done);
        }

        return barged;
    }
}
