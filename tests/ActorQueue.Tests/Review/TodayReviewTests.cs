using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Hosting;
using ActorQueue.Tests.Coordination;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 3f48457..4c4b2f8 (strict configuration reader, reports of items discarded at disposal, cancelled batch
/// reports, RetryAfter for timed-out and evicted waiters): each test fails on the reviewed code for a defect.
/// </summary>
public class TodayQueueReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>A started queue with one worker held inside item 1 and items 2..5 queued behind it, then stopped: 2..5 stay queued.</summary>
    private async Task<WorkQueue<int>> StoppedWithFourQueued(Func<Exception, int, Task>? errorHandler, ILogger? logger = null)
    {
        var queue = logger is null
            ? new WorkQueue<int>(maxSize: 10, concurrencyLimit: 1, system: Sys, name: "orders")
            : new WorkQueue<int>(10, null, 1, logger, Sys, "orders");
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(
            async (item, _) =>
            {
                if (item == 1)
                {
                    inFirst.SetResult();
                    await gate.Task;
                }
            },
            numWorkers: 1,
            errorHandler: errorHandler);
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);
        for (var item = 2; item <= 5; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        var stop = queue.StopAsync();
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        gate.SetResult();
        await stop.WaitAsync(Bound);
        Assert.Equal(4, queue.Size);
        return queue;
    }

    /// <summary>
    /// A cancelled batch whose chunk was partly admitted before the stop refused the rest: the admitted items stay queued
    /// (DrainAsync hands them back) and yet are also reported to the error handler as "cancelled before this item was
    /// queued" — the same item is given back twice. PutAllAsync returns the whole chunk on the refusal, not the
    /// unadmitted tail (PutAdmission.RefuseAll itself says "N of the batch's M items were accepted").
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_does_not_report_as_refused_the_items_of_its_chunk_that_were_admitted()
    {
        // One item per worker run, so a single freed slot admits one item of the waiting chunk.
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "batch");
        using var cancel = new CancellationTokenSource();
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var read = 0;

        IEnumerable<int> Items()
        {
            for (var i = 0; i < 100; i++)
            {
                Interlocked.Increment(ref read);
                yield return i;
            }
        }

        var batch = queue.BatchProcessAsync(Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        }, cancellationToken: cancel.Token);
        // Chunk [0..3] admitted, the worker holds item 0, chunk [4..7] is read and one of its items (4) admitted.
        await Poll.UntilAsync(() => queue.IsFull && Volatile.Read(ref read) == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {Volatile.Read(ref read)}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        var left = await queue.DrainAsync(CancellationToken.None);

        var reportedItems = reported.Select(r => r.Item).ToList();
        Assert.True(!reportedItems.Intersect(left).Any(),
            $"items both handed back by DrainAsync and reported as refused: drained [{string.Join(",", left)}], reported [{string.Join(",", reportedItems)}]");
    }

    /// <summary>
    /// The stop before a disposal has a timeout so user code cannot hold it for ever; the new reports of discarded
    /// items have none: an error handler that never completes makes DisposeAsync (and so a host's shutdown) hang.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_is_not_held_for_ever_by_an_error_handler_that_never_completes()
    {
        var never = new TaskCompletionSource();
        var queue = await StoppedWithFourQueued((_, _) => never.Task);

        var dispose = queue.DisposeAsync().AsTask();
        var finished = await Task.WhenAny(dispose, Task.Delay(Bound)) == dispose;

        never.SetResult();
        Assert.True(finished, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout is 5 s): an error handler that never completes holds it for ever");
    }

    /// <summary>
    /// Dispose, then DisposeAsync (a <c>using</c> inside an <c>await using</c>, or a container disposing twice): the
    /// second call completes at once, before the items are reported, though its documentation says it completes once
    /// every item still queued has been reported.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_after_Dispose_completes_only_after_the_items_are_reported()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<int>();
        var queue = await StoppedWithFourQueued(async (_, item) =>
        {
            entered.TrySetResult();
            await release.Task;
            reported.Enqueue(item);
        });

        queue.Dispose();
        var disposeAsync = queue.DisposeAsync().AsTask();
        await entered.Task.WaitAsync(Bound); // the reports have begun, and are held in the handler
        var completedEarly = disposeAsync.IsCompleted;
        release.SetResult();

        Assert.False(completedEarly, $"DisposeAsync completed while the error handler still had {4 - reported.Count} of 4 items to report");
    }

    /// <summary>
    /// BatchProcessAsync without an error handler installs its own collector as the workers' handler. After the batch
    /// is cancelled its items stay queued; disposing the queue then sends them to that collector of a call that has
    /// already returned: no error log ("without a handler one error log"), only a warning that they "go to the error
    /// handler" — the items vanish.
    /// </summary>
    [Fact]
    public async Task Items_left_by_a_cancelled_batch_without_a_handler_are_logged_as_an_error_at_dispose()
    {
        var logs = new CapturingLoggerProvider();
        var queue = new WorkQueue<int>(4, null, 1, logs.CreateLogger("batch"), Sys, "batch");
        using var cancel = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 4), (_, ct) =>
        {
            started.TrySetResult();
            return Task.Delay(Timeout.Infinite, ct);
        }, cancellationToken: cancel.Token);
        await started.Task.WaitAsync(Bound);
        await Poll.UntilAsync(() => queue.Metrics.Enqueued == 4, Bound, "the batch is queued");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        Assert.Equal(4, queue.Size); // they stay queued, as documented

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Equal(4, queue.Metrics.Discarded);
        Assert.True(logs.Events.Any(e => e.Level == LogLevel.Error && e.Message.Contains("not processed", StringComparison.Ordinal)),
            "no error names the 4 items discarded at dispose; logged: " + string.Join(" | ", logs.Events.Select(e => $"{e.Level}: {e.Message}")));
    }
    /// <summary>
    /// The actor system terminates with items queued in a stopped queue (the router's PostStop path reports them), then
    /// the queue is disposed: the items are each reported once, DisposeAsync completes, and the counters keep the
    /// invariant with the items as Discarded.
    /// </summary>
    [Fact]
    public async Task A_system_terminating_with_items_queued_reports_each_once_and_DisposeAsync_completes()
    {
        var system = Akka.Actor.ActorSystem.Create("review-terminating", ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig);
        var reported = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(maxSize: 10, system: system, name: "orders");
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(async (item, _) =>
        {
            if (item == 1)
            {
                inFirst.SetResult();
                await gate.Task;
            }
        }, numWorkers: 1, errorHandler: (_, item) =>
        {
            reported.Enqueue(item);
            return Task.CompletedTask;
        });
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);
        for (var item = 2; item <= 5; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        var stop = queue.StopAsync();
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        gate.SetResult();
        await stop.WaitAsync(Bound);

        await system.Terminate().WaitAsync(Bound);
        await Poll.UntilAsync(() => reported.Count >= 4, Bound, () => $"4 items reported, got {reported.Count}");
        var dispose = queue.DisposeAsync().AsTask();
        var disposed = await Task.WhenAny(dispose, Task.Delay(Bound)) == dispose;

        Assert.Equal([2, 3, 4, 5], reported);
        Assert.True(disposed, "DisposeAsync after the system terminated did not complete");
        var metrics = queue.Metrics;
        Assert.Equal(4, metrics.Discarded);
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }
    /// <summary>
    /// A batch running when its queue is disposed: the items queued reach the error handler as discarded, but the
    /// items of the chunk the disposal's stop refused (read from the caller's sequence, in no queue) reach nobody —
    /// the case 73983de fixed for a cancellation, missed for a disposal.
    /// </summary>
    [Fact]
    public async Task A_batch_whose_queue_is_disposed_reports_the_items_of_the_chunk_the_stop_refused()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "batch");
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var read = 0;

        IEnumerable<int> Items()
        {
            for (var i = 0; i < 100; i++)
            {
                Interlocked.Increment(ref read);
                yield return i;
            }
        }

        var batch = queue.BatchProcessAsync(Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        });
        await Poll.UntilAsync(() => queue.IsFull && Volatile.Read(ref read) == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {Volatile.Read(ref read)}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        await Assert.ThrowsAnyAsync<Exception>(() => Within(batch));

        var items = reported.Select(r => r.Item).Order().ToList();
        Assert.True(items.SequenceEqual(Enumerable.Range(0, 8)),
            $"of the 8 items read from the sequence, only [{string.Join(",", items)}] were processed or reported; metrics {queue.Metrics}");
    }
}

/// <summary>RetryAfter of an evicted waiter.</summary>
public class TodayGateReviewTests
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

        // What a retry of "low" at the time it was told would get: it is behind "high".
        _clock.Advance(evicted.RetryAfter!.Value);
        gate.Wake();
        var retry = new TestWaiter("low-retry", timeout: TimeSpan.Zero, tokens: 100);
        gate.Offer(retry);
        Assert.True(high.IsGranted, "high is served at the refill");
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
public class TodayConfigurationReviewTests
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
public class TodayHostingReviewTests
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
        var finished = await Task.WhenAny(stop, Task.Delay(Bound)) == stop;
        never.SetResult();
        await stop.WaitAsync(Bound);

        Assert.True(finished, $"host.StopAsync had not completed {Bound.TotalSeconds} s after it was called with a token cancelled after 1 s");
    }
}
