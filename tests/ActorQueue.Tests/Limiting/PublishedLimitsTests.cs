using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The limits a facade's <c>Resize</c> publishes at once and the gatekeeper publishes again when it applies them
/// (<see cref="LimiterCounts"/>): "MaxRunning and MaxQueued show the new values at once", and never go back to an
/// older call's. Each step is one call, made in the order a racing gatekeeper and facade interleave.
/// </summary>
public sealed class PublishedLimitsTests : ActorQueueTestKit
{
    [Fact]
    public void The_gatekeeper_applying_a_grow_after_a_later_shrink_returned_does_not_show_the_grow()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(1, null);
        var grow = counts.PublishResize(5, null);

        // The shrink returns while the gatekeeper handles the grow: the grow's publication comes after it.
        var shrink = counts.PublishResize(2, null);
        counts.PublishApplied(5, null, grow);
        Assert.Equal(2, counts.MaxRunning);

        counts.PublishApplied(2, null, shrink);
        Assert.Equal(2, counts.MaxRunning);
    }

    [Fact]
    public void An_actors_resize_shows_only_while_no_facade_resize_is_on_its_way()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(4, 10);
        counts.PublishApplied(3, 10);
        Assert.Equal((3, (int?)10), (counts.MaxRunning, counts.MaxQueued));

        var facade = counts.PublishResize(7, null);
        counts.PublishApplied(6, 10); // an actor's resize handled before the facade's message
        Assert.Equal((7, (int?)null), (counts.MaxRunning, counts.MaxQueued));

        counts.PublishApplied(7, null, facade);
        counts.PublishApplied(8, 2);
        Assert.Equal((8, (int?)2), (counts.MaxRunning, counts.MaxQueued));
    }

    [Fact]
    public void A_facade_resize_arriving_after_a_newer_one_is_applied_and_the_counts_show_what_is_in_force()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(1, null);
        var older = counts.PublishResize(3, null);
        var newer = counts.PublishResize(4, null);
        Assert.True(newer > older);
        Assert.Equal(4, counts.MaxRunning);

        // The two calls raced and their messages arrived in the other order: the gate ends with the older call's limit
        // (applied last), and the published limits follow it rather than show a limit not in force.
        counts.PublishApplied(4, null, newer);
        counts.PublishApplied(3, null, older);
        Assert.Equal(3, counts.MaxRunning);
    }

    [Fact]
    public async Task The_gatekeeper_applies_facade_resizes_in_arrival_order_and_publishes_the_limits_in_force()
    {
        var counts = new LimiterCounts();
        counts.PublishLimits(2, null);
        var gatekeeper = Sys.ActorOf(GatekeeperActor.Props(2, null, null, "published-limits-test", counts));
        var older = counts.PublishResize(3, null);
        var newer = counts.PublishResize(4, null);

        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(4, null), newer));
        gatekeeper.Tell(new FacadeResize(new GatekeeperProtocol.Resize(3, null), older));
        var status = await gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, TimeSpan.FromSeconds(10));

        Assert.Equal((3, 3), (status.MaxRunning, counts.MaxRunning));
    }
}
