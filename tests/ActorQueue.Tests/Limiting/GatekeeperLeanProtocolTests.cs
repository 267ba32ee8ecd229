using ActorQueue.Actors;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The protocol's forms for actors that loop: an acquire that is not told it waits (<see cref="Acquire.ReplyQueued"/>),
/// and a release with the next acquire in one message (<see cref="ReleaseAndAcquire"/>).
/// </summary>
public class GatekeeperLeanProtocolTests : ActorQueueTestKit
{
    [Fact]
    public async Task An_acquire_that_does_not_ask_for_queued_hears_only_its_grant()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        var held = await limiter.AcquireGranted(holder, 1);

        limiter.Gatekeeper.Tell(new Acquire("waiter", 7) { ReplyQueued = false }, waiter.Ref);
        limiter.Gatekeeper.Tell(GetStatus.Instance, waiter.Ref);

        // Replies to one sender keep their order: a Queued would arrive before the status.
        await waiter.ExpectMsgAsync<Status>(s => Assert.Equal(1, s.Waiting));
        limiter.Gatekeeper.Tell(new Release(held.LeaseId), holder.Ref);
        await waiter.ExpectMsgAsync<Granted>(g => Assert.Equal(7, g.RequestId));
    }

    [Fact]
    public async Task An_acquire_that_does_not_ask_for_queued_is_still_told_of_its_rejection()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = CreateTestProbe();
        var waiter = CreateTestProbe();
        await limiter.AcquireGranted(holder, 1);

        limiter.Gatekeeper.Tell(new Acquire("waiter", 7) { ReplyQueued = false, WaitTimeout = TimeSpan.Zero }, waiter.Ref);

        await waiter.ExpectMsgAsync<Rejected>(r => Assert.Equal(7, r.RequestId));
    }

    [Fact]
    public async Task Release_and_acquire_hands_the_permit_to_the_waiter_first_and_queues_behind_it()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var looper = CreateTestProbe();
        var waiter = CreateTestProbe();
        var held = await limiter.AcquireGranted(looper, 1);
        limiter.Gatekeeper.Tell(new Acquire("waiter", 1), waiter.Ref);
        await waiter.ExpectMsgAsync<Queued>();

        limiter.Gatekeeper.Tell(new ReleaseAndAcquire(held.LeaseId, new Acquire("looper", 2)), looper.Ref);

        var passed = await waiter.ExpectMsgAsync<Granted>();
        await looper.ExpectMsgAsync(new Queued(2, 1)); // alone in the queue: the release came first
        limiter.Gatekeeper.Tell(new Release(passed.LeaseId), waiter.Ref);
        await looper.ExpectMsgAsync<Granted>(g => Assert.Equal(2, g.RequestId));
        Assert.Equal(new Status(1, 0, 1, null, null), await this.StatusOf(limiter));
    }

    [Fact]
    public async Task Release_and_acquire_may_reuse_the_released_requests_id()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var looper = CreateTestProbe();
        var held = await limiter.AcquireGranted(looper, 1);

        limiter.Gatekeeper.Tell(new ReleaseAndAcquire(held.LeaseId, new Acquire("looper", 1)), looper.Ref);

        var again = await looper.ExpectMsgAsync<Granted>(g => Assert.Equal(1, g.RequestId));
        Assert.NotEqual(held.LeaseId, again.LeaseId);
        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task Release_and_acquire_of_an_unknown_lease_still_acquires()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);
        var looper = CreateTestProbe();
        var held = await limiter.AcquireGranted(looper, 1);

        await EventFilter.Warning(contains: "unknown lease").ExpectOneAsync(async () =>
        {
            limiter.Gatekeeper.Tell(new ReleaseAndAcquire(held.LeaseId + 1000, new Acquire("looper", 2)), looper.Ref);
            await looper.ExpectMsgAsync<Granted>(g => Assert.Equal(2, g.RequestId));
        });

        Assert.Equal(2, (await this.StatusOf(limiter)).Running);
    }
}
