using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the queues after helper 123's <c>UserText</c> (the limiters read the application's text safely): a worker's
/// exception is the application's, and its <c>Message</c> may throw. The queue must still count, report and settle
/// the item (failed, retried or dead-lettered with a reason), and go on with the next one.
/// </summary>
public sealed class ThrowingMessageReviewTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public ThrowingMessageReviewTests()
    {
        _store = new DurableStore(Sys);
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }

    /// <summary>
    /// FINDING: the durable router formatted the failure's reason (<c>{type}: {Message}</c>) inside its actor; the throw
    /// restarted the router, and the item was neither dead-lettered nor run again. Expected: dead-lettered with a
    /// placeholder for the message, and the next item runs.
    /// </summary>
    [Fact]
    public async Task A_durable_item_whose_failure_message_throws_is_dead_lettered_and_the_queue_goes_on()
    {
        await using var queue = new BoundedQueue<int>(10, _store.Durability(_clock, new RetryPolicy { MaxAttempts = 1 }), DurableStore.UniqueName("nasty"), system: Sys);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(FailingOnOne(ran), numWorkers: 1);

        Assert.True(await Within(queue.PutAsync(1)));
        var dead = await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Dilated(TimeSpan.FromSeconds(10)));
        Assert.Equal((1, 1), (dead[0].Item, dead[0].Attempts));
        Assert.Equal($"{typeof(NastyFault).FullName}: <Message threw {nameof(NastyFault)}>", dead[0].LastError);

        Assert.True(await Within(queue.PutAsync(2)));
        Assert.Equal(2, await Within(ran.Task));
    }

    /// <summary>
    /// FINDING: an error handler that threw had its log line read the worker exception's <c>Message</c>, so the
    /// "never throws" report threw. Expected: the item is counted failed, and the next runs.
    /// </summary>
    [Fact]
    public async Task A_failure_whose_message_throws_reported_to_a_throwing_error_handler_is_counted_and_the_queue_goes_on()
    {
        await using var queue = new BoundedQueue<int>(10, name: $"review-nasty-{Guid.NewGuid():N}", system: Sys);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = 0;
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(FailingOnOne(ran), numWorkers: 1, errorHandler: (_, _) =>
        {
            Interlocked.Increment(ref reported);
            throw new InvalidOperationException("the handler failed too");
        });

        Assert.True(await Within(queue.PutAsync(1)));
        Assert.True(await Within(queue.PutAsync(2)));
        Assert.Equal(2, await Within(ran.Task));
        await Eventually(() => queue.Metrics is { Errors: 1, Processed: 2 }, "the failed item is counted");
        Assert.Equal(1, Volatile.Read(ref reported));
    }

    /// <summary>
    /// FINDING: a Microsoft.Extensions.Logging provider that formats as it is called (the console's does) read the
    /// failure's <c>ToString</c> inside "Worker failed", and <c>ILogger.Log</c> let the throw out of the worker's report.
    /// Expected: the line is logged with a stand-in naming the type, the item is counted failed, and the next runs.
    /// </summary>
    [Fact]
    public async Task A_failure_whose_message_throws_logged_to_a_formatting_logger_is_counted_and_the_queue_goes_on()
    {
        var logger = new FormattingLogger();
        await using var queue = new BoundedQueue<int>(10, null, logger, Sys, $"review-nasty-log-{Guid.NewGuid():N}");
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(FailingOnOne(ran), numWorkers: 1);

        Assert.True(await Within(queue.PutAsync(1)));
        Assert.True(await Within(queue.PutAsync(2)));
        Assert.Equal(2, await Within(ran.Task));
        await Eventually(() => queue.Metrics is { Errors: 1, Processed: 2 }, "the failed item is counted");
        Assert.Contains(logger.Errors, line => line.Contains(typeof(NastyFault).FullName!, StringComparison.Ordinal));
    }

    /// <summary>A logger formatting each event and its exception on the caller's thread, as the console provider does.</summary>
    private sealed class FormattingLogger : Microsoft.Extensions.Logging.ILogger
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Errors { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
                                Func<TState, Exception?, string> formatter)
        {
            var line = $"{formatter(state, exception)} {exception}";
            if (exception is not null)
            {
                Errors.Enqueue(line);
            }
        }
    }

    /// <summary>A worker failing item 1 with a <see cref="NastyFault"/> and handing any other to <paramref name="ran"/>.</summary>
    private static Func<int, Task> FailingOnOne(TaskCompletionSource<int> ran) => item =>
    {
        if (item == 1)
        {
            throw new NastyFault();
        }

        ran.TrySetResult(item);
        return Task.CompletedTask;
    };

    /// <summary>An exception whose <c>Message</c> (so its <c>ToString</c> too) throws another of its kind.</summary>
    private sealed class NastyFault() : Exception("never read")
    {
        public override string Message => throw new NastyFault();
    }
}
