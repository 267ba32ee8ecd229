using ActorQueue.Coordination;
using ActorQueue.Hosting;
using ActorQueue.Tests.Coordination;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>RetryAfter of an evicted waiter.</summary>
public class RetryAfterReviewTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly RecordingListener _listener = new();
    private readonly FakeTimeProvider _clock = new();
    private readonly PermitPool _slots = new(8);
    private readonly TokenBucketPolicy _requests = new(5, 5, Minute, PermitMeasure.Calls);
    private readonly TokenBucketPolicy _tokens = new(1000, 1000, Minute, PermitMeasure.Tokens);

    /// <summary>
    /// The waiter evicted by a newcomer of higher priority is told when a retry could be served counting only the
    /// waiters still queued: the newcomer, which is queued right after and will be served before any retry, is left
    /// out, so the evicted caller is told 1:00 while its retry cannot be served before 2:00.
    /// </summary>
    [Fact]
    public void An_evicted_waiter_is_told_a_retry_after_that_counts_the_newcomer_that_evicted_it()
    {
        var gate = new PermitGate(_listener, [_slots, _requests, _tokens], maxQueued: 1, QueueFullPolicy.EvictLowestNewest, time: _clock);
        gate.Offer(new TestWaiter("big", tokens: 1000)); // granted: the minute's tokens are gone
        gate.Offer(new TestWaiter("low", tokens: 100)); // queued: waits for the refill at 1:00
        var high = new TestWaiter("high", priority: 1, timeout: TimeSpan.FromMinutes(10), tokens: 950);
        gate.Offer(high); // evicts "low"; at 1:00 it takes 950 of the 1000 refilled, leaving 50 < 100

        var evicted = _listener.Rejections.Single().Rejection;
        Assert.Equal(PermitRejectionKind.Evicted, evicted.Kind);

        // What a retry of "low" at the time it was told would get: it is behind "high", served at the refill at 1:00
        // (the gate's timer wakes it then).
        _clock.Advance(Minute);
        gate.Wake();
        Assert.True(high.IsGranted, "high is served at the refill");
        _clock.Advance(evicted.RetryAfter!.Value - Minute);
        gate.Wake();
        var retry = new TestWaiter("low-retry", timeout: TimeSpan.Zero, tokens: 100);
        gate.Offer(retry);
        Assert.True(retry.IsGranted, $"a retry after the RetryAfter it was given ({evicted.RetryAfter}) was refused: {_listener.Rejections.Last().Rejection}");
    }
    /// <summary>
    /// Two waiters time out in the same wake: the first one rejected is told a RetryAfter that counts the second as
    /// queued ahead of its retry, though the second is rejected in the same wake and never served. Each alone, a retry
    /// fits the refill at 1:00 (50 s later); the first is told 110 s.
    /// </summary>
    [Fact]
    public void Waiters_timing_out_together_are_not_counted_ahead_of_each_other()
    {
        var gate = new PermitGate(_listener, [_slots, _requests, _tokens], maxQueued: null, time: _clock);
        gate.Offer(new TestWaiter("big", tokens: 1000)); // granted: the minute's tokens are gone
        gate.Offer(new TestWaiter("a", timeout: TimeSpan.FromSeconds(10), tokens: 600));
        gate.Offer(new TestWaiter("b", timeout: TimeSpan.FromSeconds(10), tokens: 500));

        _clock.Advance(TimeSpan.FromSeconds(10));
        gate.Wake();

        var told = _listener.Rejections.Select(r => $"{r.Waiter}: {r.Rejection.Kind} {r.Rejection.RetryAfter}").ToList();
        Assert.Equal(2, told.Count);
        Assert.True(_listener.Rejections.All(r => r.Rejection.RetryAfter == TimeSpan.FromSeconds(50)),
            $"each fits the refill at 1:00 once the other is gone too, but they were told: {string.Join("; ", told)}");
    }
}

/// <summary>The strict configuration reader against the binder it replaces, on inputs the binder took.</summary>
public class ConfigurationReaderReviewTests
{
    private static IConfigurationSection Section(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(ActorQueueOptions.SectionName);

    private static string Describe(ActorQueueOptions options) =>
        $"UseAsDefaultSystem={options.UseAsDefaultSystem}; Limiters=[{string.Join(",", options.Limiters.Select(l => $"{l.Key}:{l.Value.MaxRunning}/{l.Value.MaxQueued}"))}]; "
        + $"Queues=[{string.Join(",", options.Queues.Select(q => $"{q.Key}:{q.Value.MaxSize}/{q.Value.PutTimeout}/{q.Value.ConcurrencyLimit}/{q.Value.Limiter}"))}]";

    private static string Outcome(Action<ActorQueueOptions> bind)
    {
        var options = new ActorQueueOptions();
        try
        {
            bind(options);
            return Describe(options);
        }
        catch (Exception error)
        {
            return $"{error.GetType().Name}: {error.Message}";
        }
    }

    /// <summary>
    /// Regression against the binder: the binder's Int32Converter took a hexadecimal whole number ("0x10" is 16); the
    /// strict reader refuses it and fails the start. (It used to bind.)
    /// </summary>
    [Theory]
    [InlineData("ActorQueue:Limiters:llm:MaxRunning", "0x10")]
    [InlineData("ActorQueue:Queues:q:MaxSize", "0x10")]
    public void A_whole_number_the_binder_took_is_still_read(string key, string value)
    {
        var settings = new Dictionary<string, string?> { [key] = value };
        var binder = Outcome(options => Section(settings).Bind(options));
        var reader = Outcome(options => ActorQueueConfiguration.Bind(Section(settings), options));

        Assert.Equal(binder, reader);
    }

    /// <summary>
    /// The reader refuses a plain value where a limiter's or queue's settings belong, but a plain value where the
    /// whole Limiters or Queues section belongs (a JSON <c>"Limiters": "llm"</c> or <c>"Queues": 5</c>) is silently
    /// ignored, and the host starts with none.
    /// </summary>
    [Theory]
    [InlineData("ActorQueue:Limiters", "llm")]
    [InlineData("ActorQueue:Queues", "5")]
    public void A_value_in_place_of_the_Limiters_or_Queues_section_is_refused(string key, string value)
    {
        var settings = new Dictionary<string, string?> { [key] = value };

        var error = Record.Exception(() => ActorQueueConfiguration.Bind(Section(settings), new ActorQueueOptions()));

        Assert.True(error is ArgumentException { ParamName: var name } && name == key,
            $"'{key}' = '{value}' was accepted silently (got {error?.GetType().Name ?? "no error"})");
    }
}

/// <summary>A host's shutdown held for ever by the reports of a disposal.</summary>
[Collection(HostingCollection.Name)]
public class HostDisposalReviewTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The host stops its queues with its shutdown token (in-flight work cancelled) and then disposes them; the
    /// disposal now waits for the error handler to take each item still queued, with no bound and no token, so a
    /// handler that never completes holds the host's StopAsync for ever, long past its cancelled token.
    /// </summary>
    [Fact]
    public async Task A_host_stop_whose_token_is_cancelled_is_not_held_by_an_error_handler_that_never_completes()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ActorQueue:UseAsDefaultSystem"] = "false",
            ["ActorQueue:Queues:q:MaxSize"] = "10",
            ["ActorQueue:Queues:q:ConcurrencyLimit"] = "1",
        });
        builder.Services.AddActorQueue(builder.Configuration.GetSection(ActorQueueOptions.SectionName));
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Bound);
        var queue = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ActorQueueRegistry>(host.Services).GetQueue<int>("q");
        var never = new TaskCompletionSource();
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(async (item, ct) =>
        {
            inFirst.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, numWorkers: 1, errorHandler: (_, _) => never.Task);
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);
        for (var item = 2; item <= 5; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var stop = host.StopAsync(shutdown.Token);
        var finished = await Poll.CompletesWithin(stop, Bound);
        never.SetResult();
        await stop.WaitAsync(Bound);

        Assert.True(finished, $"host.StopAsync had not completed {Bound.TotalSeconds} s after it was called with a token cancelled after 1 s");
    }
}
