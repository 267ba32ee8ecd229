using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A metrics listener is the application's code, run on whatever thread records a measurement — for a limiter, inside
/// its gatekeeper's turn, between taking a waiter out of the queue and telling it. A listener that throws there must
/// cost a measurement, never a waiter.
/// </summary>
public sealed class ThrowingMetricsListenerTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_listener_that_throws_on_the_waiting_count_loses_no_waiter_and_no_permit()
    {
        var name = $"throwing-listener-{Guid.NewGuid():N}";
        using var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        var holder = await Within(limiter.AcquireAsync("holder").AsTask());
        var waiting = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "one waits");

        using var listener = ThrowingOn(ActorQueueTelemetry.LimiterWaitingCounter, name);
        holder.Dispose(); // the grant moves the waiting count: the listener throws inside the turn

        await HoldsAndGivesBackAsync(limiter, await Within(waiting));
    }

    [Fact]
    public async Task A_listener_that_throws_on_a_partitions_waiting_count_loses_no_waiter()
    {
        var name = $"throwing-partition-{Guid.NewGuid():N}";
        using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(10), name, system: Sys);
        var holder = await Within(limiter.AcquireAsync("key").AsTask());
        var waiting = limiter.AcquireAsync("key").AsTask();
        // The statistics are read synchronously (the task comes back completed).
        await Eventually(() => limiter.GetStatisticsAsync().GetAwaiter().GetResult().TryGetValue("key", out var key) && key.Waiting == 1, "one waits in the partition");

        using var listener = ThrowingOn(ActorQueueTelemetry.LimiterWaitingCounter, name);
        holder.Dispose(); // the grant moves the waiting count: the listener throws inside the partition's turn

        (await Within(waiting)).Dispose();
        (await Within(limiter.AcquireAsync("key").AsTask())).Dispose();
    }

    [Fact]
    public async Task A_listener_that_throws_on_a_rejection_still_fails_the_rejected_caller()
    {
        var name = $"throwing-rejection-{Guid.NewGuid():N}";
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1, MaxQueued: 0), name: name, system: Sys);
        var holder = await Within(limiter.AcquireAsync("holder").AsTask());
        using var listener = ThrowingOn(RateTelemetry.Rejections, name);

        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync("refused").AsTask()));
        holder.Dispose();
    }

    [Fact]
    public async Task A_listener_that_throws_on_an_acquire_leaks_no_permit()
    {
        var name = $"throwing-claim-{Guid.NewGuid():N}";
        using var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        (await Within(limiter.AcquireAsync("first").AsTask())).Dispose(); // the gatekeeper has started (and lends)
        using var listener = ThrowingOn(ActorQueueTelemetry.LimiterAcquiredCounter, name);

        // A claim from the loan, or a grant in the turn.
        await HoldsAndGivesBackAsync(limiter, await Within(limiter.AcquireAsync("claimer").AsTask()));
    }

    [Fact]
    public async Task A_listener_that_throws_on_a_rate_limiters_tokens_loses_no_waiter()
    {
        var name = $"throwing-tokens-{Guid.NewGuid():N}";
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 1_000, 1_000_000, TimeSpan.FromMinutes(1)), name: name, system: Sys);
        var holder = await Within(limiter.AcquireAsync(10).AsTask());
        var second = limiter.AcquireAsync(10).AsTask();
        var third = limiter.AcquireAsync(10).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two wait");
        using var listener = ThrowingOn(ActorQueueTelemetry.LimiterTokensGranted, name);

        holder.Dispose(); // grants the second: counting its tokens throws
        (await Within(second)).Dispose(); // grants the third
        (await Within(third)).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "nothing held");
    }

    [Fact]
    public async Task A_listener_that_always_throws_is_logged_at_each_power_of_two_of_its_failures_not_at_each()
    {
        var name = $"throwing-often-{Guid.NewGuid():N}";
        using var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        (await Within(limiter.AcquireAsync("first").AsTask())).Dispose(); // the gatekeeper has started (and lends)
        var errors = CreateTestProbe();
        Sys.EventStream.Subscribe(errors.Ref, typeof(Akka.Event.Error));
        using (ThrowingOn(ActorQueueTelemetry.LimiterAcquiredCounter, name))
        {
            // One caller at a time: each claims from the loan (or, finding it shut for an instant, is granted in the
            // gatekeeper's turn), and counting its acquire throws once.
            for (var i = 0; i < 64; i++)
            {
                (await Within(limiter.AcquireAsync("claimer").AsTask())).Dispose();
            }
        }

        // A log call publishes to the event stream before it returns: every report is in the probe's mailbox now.
        var reports = new List<Akka.Event.Error>();
        while (errors.HasMessages)
        {
            if (errors.ReceiveOne(TimeSpan.Zero) is Akka.Event.Error { } error && error.ToString().Contains(name, StringComparison.Ordinal))
            {
                reports.Add(error);
            }
        }

        // Each part that records counts its own failures (the facade's claims, the gatekeeper's turn): per part, the
        // reports come at 1, 2, 4, …; all 64 failures together give at most two such runs, one of them reaching 32.
        var bySource = reports.GroupBy(report => report.LogSource).Select(part => part.Select(report => DroppedSoFar(report.ToString())).ToList()).ToList();
        Assert.All(bySource, counts => Assert.Equal(Enumerable.Range(0, counts.Count).Select(power => (1L << power).ToString(System.Globalization.CultureInfo.InvariantCulture)), counts));
        Assert.InRange(bySource.Count, 1, 2);
        Assert.Contains(bySource, counts => counts.Count >= 6);
        Assert.All(reports, report => Assert.IsType<InvalidOperationException>(report.Cause));

        // A lease the gatekeeper granted in its turn may be released while that turn is still held: its release then runs
        // when the turn's owner gets to it, and the count follows.
        await Eventually(() => limiter.RunningCount == 0, "every lease came back");
    }

    /// <summary>The count of dropped measurements a report gives.</summary>
    private static string DroppedSoFar(string report) =>
        System.Text.RegularExpressions.Regex.Match(report, @"(\d+) dropped so far") is { Success: true } match ? match.Groups[1].Value : $"no count in: {report}";

    /// <summary><paramref name="lease"/> holds the limiter's one permit, which comes back when it is disposed and serves the next caller.</summary>
    private async Task HoldsAndGivesBackAsync(ConcurrencyLimiter limiter, ConcurrencyLease lease)
    {
        Assert.Equal(1, limiter.RunningCount);
        lease.Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.AvailableCount == 1, "the permit came back");
        (await Within(limiter.AcquireAsync("after").AsTask())).Dispose();
    }

    /// <summary>A listener whose callback throws for <paramref name="instrument"/>'s measurements of the limiter named <paramref name="limiterName"/> only.</summary>
    private static MeterListener ThrowingOn(Instrument instrument, string limiterName) => ThrowingOn(instrument.Name, limiterName);

    /// <summary>As above, for the instrument named <paramref name="instrumentName"/>.</summary>
    private static MeterListener ThrowingOn(string instrumentName, string limiterName) =>
        ThrowingMeterListener.Start(instrumentName, ActorQueueTelemetry.LimiterNameTag, name => Equals(name, limiterName));
}
