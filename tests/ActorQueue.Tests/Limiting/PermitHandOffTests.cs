using ActorQueue.Actors;
using ActorQueue.Tests.Primitives;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A release hands its permits to the heads the gatekeeper published, without a message: on a stand-in of the
/// gatekeeper's message loop over a real gate, step by step and with racing threads.
/// </summary>
public sealed class PermitHandOffTests
{
    [Fact]
    public async Task A_release_hands_its_permit_to_the_published_head_and_the_gatekeeper_only_unlinks_it()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var (first, second) = (Queued(gatekeeper, "first"), Queued(gatekeeper, "second"));
        Assert.True(gatekeeper.HandOff.IsServing);
        Assert.Equal(2, gatekeeper.Counts.Waiting);
        gatekeeper.Nothing();

        holder.Dispose();
        Assert.Equal((1, 0), (first.Grants, second.Grants));
        Assert.Empty(gatekeeper.Mailbox);
        Assert.Equal(1, gatekeeper.Counts.Waiting);
        Assert.Equal(1, gatekeeper.Counts.Running);

        gatekeeper.Nothing();
        Assert.Equal(1, gatekeeper.HandedOff);
        Assert.Equal((1, 1L, 1), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse, gatekeeper.Counts.Waiting));
        Assert.Equal(1, gatekeeper.GateGrants);
        Assert.Empty(gatekeeper.Failures);

        (await first.Completion).Dispose();
        Assert.Equal(1, second.Grants);
        gatekeeper.Nothing();
        Assert.Equal((0, 0), (gatekeeper.Gate.Waiting, gatekeeper.Counts.Waiting));
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_head_is_handed_a_permit_once_and_a_release_with_no_head_left_goes_by_message()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(2);
        var (one, two) = (await Granted(gatekeeper, "one"), await Granted(gatekeeper, "two"));
        var waiter = Queued(gatekeeper, "waiter");

        one.Dispose();
        Assert.Equal(1, waiter.Grants);
        gatekeeper.Nothing();
        two.Dispose();
        Assert.Single(gatekeeper.Mailbox);
        gatekeeper.DeliverMail();

        Assert.Equal(1, waiter.Grants);
        Assert.Equal((0, 1L), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse));
        Assert.Equal((0, 1), (gatekeeper.Counts.Waiting, gatekeeper.Counts.Running));
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_head_cancelled_as_it_is_taken_passes_the_permit_on_to_the_next_head()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var (cancelled, next) = (Queued(gatekeeper, "cancelled"), Queued(gatekeeper, "next"));
        gatekeeper.Nothing();
        Assert.True(cancelled.TryCancel(CancellationToken.None));

        holder.Dispose();
        Assert.Equal((0, 1), (cancelled.Grants, next.Grants));
        Assert.Empty(gatekeeper.Mailbox);
        gatekeeper.Withdraw(cancelled);
        Assert.Equal((0, 1L, 0), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse, gatekeeper.Counts.Waiting));
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_head_cancelled_as_it_is_taken_sends_the_permit_back_when_no_head_is_left()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var cancelled = Queued(gatekeeper, "cancelled");
        Assert.True(cancelled.TryCancel(CancellationToken.None));

        holder.Dispose();
        gatekeeper.DeliverMail();
        Assert.Equal((0, 0L, 0), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse, gatekeeper.Counts.Running));

        var newcomer = await Granted(gatekeeper, "newcomer");
        Assert.Equal(1, newcomer.Permits);
    }

    [Fact]
    public async Task No_facade_waiter_behind_an_actor_waiter_is_handed_a_permit()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var first = Queued(gatekeeper, "first");
        var actor = new RacingWaiter();
        gatekeeper.DeliverOther(actor);
        var behind = Queued(gatekeeper, "behind");

        holder.Dispose();
        Assert.Equal(1, first.Grants);
        gatekeeper.Nothing();
        (await first.Completion).Dispose();
        Assert.Equal(0, behind.Grants);
        Assert.False(actor.Granted.IsSet, "the actor's turn is the gatekeeper's to serve");

        gatekeeper.DeliverMail();
        Assert.True(actor.Granted.IsSet);
        Assert.Equal(0, behind.Grants);
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_weighted_release_pays_the_heads_in_order_while_it_covers_them_and_sends_the_rest()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(4);
        var holder = await Granted(gatekeeper, "holder", permits: 4);
        var (one, two, another) = (Queued(gatekeeper, "one", 1), Queued(gatekeeper, "two", 2), Queued(gatekeeper, "another two", 2));
        gatekeeper.Nothing();

        holder.Dispose();
        Assert.Equal((1, 1, 0), (one.Grants, two.Grants, another.Grants));
        gatekeeper.DeliverMail();
        Assert.Equal(0, another.Grants);
        Assert.Equal((1, 3L, 1), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse, gatekeeper.Counts.Waiting));
        Assert.Equal(3, gatekeeper.Counts.Running);
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_smaller_request_behind_a_head_the_release_cannot_cover_is_not_handed_the_permit()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(3);
        var (small, large) = (await Granted(gatekeeper, "small"), await Granted(gatekeeper, "large", permits: 2));
        var (head, behind) = (Queued(gatekeeper, "head", 2), Queued(gatekeeper, "behind", 1));
        Assert.True(gatekeeper.HandOff.IsPublished, "a full pool publishes its front");

        small.Dispose();
        Assert.Equal((0, 0), (head.Grants, behind.Grants));
        gatekeeper.DeliverMail();
        Assert.Equal((0, 0), (head.Grants, behind.Grants));
        Assert.Equal(2L, gatekeeper.Pool.InUse);
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_head_whose_successor_fits_the_free_permits_is_not_published()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(3);
        var (small, large) = (await Granted(gatekeeper, "small"), await Granted(gatekeeper, "large", permits: 2));
        small.Dispose();
        gatekeeper.DeliverMail();
        var (head, behind) = (Queued(gatekeeper, "head", 2), Queued(gatekeeper, "behind", 1));

        // Taking the head would leave the one behind it waiting beside a free permit until some message came.
        Assert.False(gatekeeper.HandOff.IsPublished);
        large.Dispose();
        Assert.Equal((0, 0), (head.Grants, behind.Grants));
        gatekeeper.DeliverMail();
        Assert.Equal((1, 1), (head.Grants, behind.Grants));
        Assert.Equal(3L, gatekeeper.Pool.InUse);
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task A_prioritised_request_on_its_way_keeps_its_permit_from_the_heads_published_before_it()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var waiter = Queued(gatekeeper, "waiter");
        var urgent = new CountedRequest("urgent", priority: 1) { Announced = true };
        gatekeeper.HandOff.AnnouncePrioritised();
        gatekeeper.Mailbox.Enqueue(() => gatekeeper.Deliver(urgent));

        holder.Dispose();
        Assert.Equal(0, waiter.Grants);
        gatekeeper.DeliverMail();
        Assert.Equal((1, 0), (urgent.Grants, waiter.Grants));
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task No_head_is_handed_a_permit_once_a_shrink_was_asked_for()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(2);
        var (one, two) = (await Granted(gatekeeper, "one"), await Granted(gatekeeper, "two"));
        var waiter = Queued(gatekeeper, "waiter");

        // The facade's Resize: the limit published, the hand-off suspended, the message sent.
        gatekeeper.Counts.PublishLimits(1, null);
        gatekeeper.HandOff.Suspend();
        gatekeeper.Mailbox.Enqueue(() => gatekeeper.Resize(1));
        one.Dispose();
        Assert.Equal(0, waiter.Grants);
        gatekeeper.DeliverMail();
        Assert.Equal(0, waiter.Grants);
        Assert.Equal(1L, gatekeeper.Pool.InUse);

        two.Dispose();
        gatekeeper.DeliverMail();
        Assert.Equal(1, waiter.Grants);
        Assert.Equal(1L, gatekeeper.Pool.InUse);
        Assert.Empty(gatekeeper.Failures);
    }

    [Fact]
    public async Task Once_closed_no_head_is_handed_a_permit_and_the_stop_fails_only_the_heads_not_taken()
    {
        var gatekeeper = new HandOffGatekeeperStandIn(1);
        var holder = await Granted(gatekeeper, "holder");
        var (taken, left) = (Queued(gatekeeper, "taken"), Queued(gatekeeper, "left"));
        holder.Dispose();
        var lease = await taken.Completion;

        gatekeeper.HandOff.Close();
        lease.Dispose();
        Assert.Equal(0, left.Grants);
        gatekeeper.Stop();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await left.Completion);
        Assert.Equal((0, 0), (gatekeeper.Gate.Waiting, gatekeeper.Counts.Waiting));
    }

    [Fact]
    public void Racing_releasers_cancellers_prioritised_newcomers_and_resizes_hand_permits_on_from_the_front_within_the_cap()
    {
        const int threads = 6;
        const int rounds = 4_000;
        const int most = 3;
        var gatekeeper = new HandOffGatekeeperStandIn(most);
        var thread = new CoordinatorThread(message => ((Action)message)());
        gatekeeper.Thread = thread;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var requests = new System.Collections.Concurrent.ConcurrentBag<CountedRequest>();
        var inside = 0;
        var mostInside = 0;
        var start = new Barrier(threads + 1);

        var callers = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                var request = new CountedRequest($"{index}/{i}", permits: 1 + (i % 2), priority: i % 11 == 0 ? 1 : 0) { Announced = true };
                requests.Add(request);
                if (request.Priority > 0)
                {
                    gatekeeper.HandOff.AnnouncePrioritised();
                }

                var granted = request.WaitAsTaskAsync(CancellationToken.None);
                thread.Post(() => gatekeeper.Deliver(request));
                if (i % 7 == index % 7 && request.TryCancel(CancellationToken.None))
                {
                    thread.Post(() => gatekeeper.Withdraw(request));
                    continue;
                }

                if (!granted.Wait(TimeSpan.FromSeconds(60)))
                {
                    failures.Enqueue("a waiter was never granted: a permit was lost");
                    return;
                }

                Poll.InterlockedMax(ref mostInside, Interlocked.Add(ref inside, request.Demand.Permits));
                Thread.SpinWait(50); // work while held, so that others queue and releases find heads to hand on to
                Interlocked.Add(ref inside, -request.Demand.Permits);
                granted.Result.Dispose();
            }
        })).ToList();

        var resizer = new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 200; i++)
            {
                // As the facade's Resize does it; the limit only moves between 3 and 2, so at most 3 are ever in use.
                var limit = most - (i % 2);
                gatekeeper.Counts.PublishLimits(limit, null);
                gatekeeper.HandOff.Suspend();
                thread.Post(() => gatekeeper.Resize(limit));
                Thread.SpinWait(5_000);
            }

            gatekeeper.Counts.PublishLimits(most, null);
            gatekeeper.HandOff.Suspend();
            thread.Post(() => gatekeeper.Resize(most));
        });
        callers.Add(resizer);
        Racers.Run([.. callers]);
        thread.Post(() => gatekeeper.Nothing());
        thread.Stop();

        Assert.Empty(failures);
        Assert.Empty(gatekeeper.Failures);
        Assert.InRange(mostInside, 1, most);
        Assert.True(gatekeeper.HandedOff > 0, "no release ever handed its permits to a published head");
        Assert.True(gatekeeper.LeftOpen > 0, "no newcomer ever queued behind an open publication");
        Assert.All(requests, request => Assert.InRange(request.Grants, 0, 1));
        Assert.Equal((0, 0L), (gatekeeper.Gate.Waiting, gatekeeper.Pool.InUse));
        Assert.Equal((0, 0), (gatekeeper.Counts.Waiting, gatekeeper.Counts.Running));
    }

    /// <summary>A caller whose request the gate granted on arrival.</summary>
    private static async Task<ConcurrencyLease> Granted(HandOffGatekeeperStandIn gatekeeper, string source, int permits = 1)
    {
        var request = new CountedRequest(source, permits);
        gatekeeper.Deliver(request);
        Assert.Equal(1, request.Grants);
        return await request.Completion;
    }

    /// <summary>A caller that had to wait: queued, and published with the gatekeeper's message.</summary>
    private static CountedRequest Queued(HandOffGatekeeperStandIn gatekeeper, string source, int permits = 1)
    {
        var request = new CountedRequest(source, permits);
        gatekeeper.Deliver(request);
        Assert.True(request.IsQueued, $"{source} waits");
        return request;
    }
}
