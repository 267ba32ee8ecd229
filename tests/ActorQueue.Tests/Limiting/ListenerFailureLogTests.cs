using System.Text.RegularExpressions;
using ActorQueue.Telemetry;
using Akka.Event;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// <see cref="ListenerFailureLog"/> on its own: which failures it reports, what each report says, and that the count
/// is one per telemetry instance and exact when many threads fail at once.
/// </summary>
public sealed class ListenerFailureLogTests : ActorQueueTestKit
{
    [Fact]
    public void Each_report_gives_the_count_so_far_and_the_count_of_the_next_report()
    {
        var (failures, errors) = Logged();
        for (var i = 0; i < 1_025; i++)
        {
            failures.Report(new InvalidOperationException("listener"));
        }

        var reports = Drain(errors);
        Assert.Equal(
            [(1L, 2L), (2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512), (512, 1_024), (1_024, 2_048)],
            reports.Select(Counts));
        Assert.All(reports, report => Assert.IsType<InvalidOperationException>(report.Cause));
        Assert.Equal(1_025, failures.Dropped);
    }

    [Fact]
    public void Each_telemetry_counts_its_own_failures()
    {
        var (first, errors) = Logged();
        var second = new ListenerFailureLog(Logging.GetLogger(Sys, "listener-failure-log"), $"other-{Guid.NewGuid():N}");
        first.Report(new InvalidOperationException("listener"));
        first.Report(new InvalidOperationException("listener"));
        second.Report(new InvalidOperationException("listener"));

        Assert.Equal([(1L, 2L), (2, 4), (1, 2)], Drain(errors).Select(Counts));
    }

    [Fact]
    public async Task Failures_on_many_threads_at_once_are_each_counted_and_each_power_of_two_is_reported_once()
    {
        var (failures, errors) = Logged();
        using var start = new Barrier(4);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 1 << 15; i++)
            {
                failures.Report(new InvalidOperationException("listener"));
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));

        // The reporting threads may publish out of order; each power of two is reported exactly once.
        Assert.Equal(Enumerable.Range(0, 18).Select(bit => 1L << bit), Drain(errors).Select(report => Counts(report).SoFar).Order());
        Assert.Equal(4L << 15, failures.Dropped);
    }

    /// <summary>A failure log of its own limiter name, and a probe that hears its Error events.</summary>
    private (ListenerFailureLog Failures, Akka.TestKit.TestProbe Errors) Logged()
    {
        var name = $"failure-log-{Guid.NewGuid():N}";
        var errors = CreateTestProbe();
        Sys.EventStream.Subscribe(errors.Ref, typeof(Error));
        return (new ListenerFailureLog(Logging.GetLogger(Sys, "listener-failure-log"), name), errors);
    }

    /// <summary>The Error events of the failure logs heard so far (a log call publishes before it returns).</summary>
    private static List<Error> Drain(Akka.TestKit.TestProbe errors)
    {
        var reports = new List<Error>();
        while (errors.HasMessages)
        {
            if (errors.ReceiveOne(TimeSpan.Zero) is Error error && error.LogSource.Contains("listener-failure-log", StringComparison.Ordinal))
            {
                reports.Add(error);
            }
        }

        return reports;
    }

    /// <summary>The count dropped so far and the count of the next report, as a report gives them.</summary>
    private static (long SoFar, long Next) Counts(Error report)
    {
        var match = Regex.Match(report.ToString(), @"\((\d+) dropped so far; reported again at (\d+)\)");
        Assert.True(match.Success, $"no counts in: {report}");
        return (long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                long.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }
}
