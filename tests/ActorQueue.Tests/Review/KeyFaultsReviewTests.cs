using System.Diagnostics;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Limiting;
using Akka.Actor;
using Akka.Actor.Internal;
using Akka.Event;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the application's code the local limiters run in odd places (<c>fix/partition-key-faults</c>): a partition
/// key's <c>ToString</c>, an exception's <c>Message</c>, a clock (a limit's <c>TimeProvider</c>). Each breaks only the
/// request it is about, which gets the limiter's own answer (a lease, a refusal, a timeout, or a failure counted with a
/// reason), and every other caller is served as before.
/// </summary>
public sealed class KeyFaultsReviewTests : KeyFaultsReviewBase
{
    /// <summary>What the library writes for a key whose <c>ToString</c> threw an <see cref="InvalidOperationException"/>.</summary>
    private const string UnnamedKey = "<key ToString threw InvalidOperationException>";

    /// <summary>
    /// A traced partitioned limiter, a key whose <c>ToString</c> throws: its callers wait, are granted or time out as any
    /// other key's, and their wait spans are recorded with a placeholder for the key. DEFECT (fixed): the span's key tag
    /// was read after the request was dispatched, so the caller got the key's exception while its request went on: once
    /// granted, its permit was held by nobody, for good ("Assert.Null() Failure: Value is not null", the key's exception).
    /// </summary>
    [Fact]
    public async Task A_key_whose_ToString_throws_waits_is_granted_and_times_out_with_its_span_recorded()
    {
        using var spans = new SpanRecorder();
        using var limiter = new PartitionedConcurrencyLimiter<FaultyKey>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout,
                                                                         $"review-key-faults-span-{Guid.NewGuid():N}", spans.Tracer, Sys);
        var (bad, good) = (new FaultyKey("bad"), new FaultyKey("good"));
        var holder = await Within(limiter.AcquireAsync(bad).AsTask());

        bad.ToStringThrows = true;
        Task<ConcurrencyLease>? waiter = null, timed = null;
        var thrown = Record.Exception(() =>
        {
            waiter = limiter.AcquireAsync(bad, source: "waiter").AsTask();
            timed = limiter.AcquireAsync(bad, waitTimeout: TimeSpan.FromMinutes(1), source: "timed").AsTask();
        });

        Assert.Null(thrown);
        await Eventually(() => limiter.StatisticsOf(bad) is { Waiting: 2 }, "both callers of the key wait");
        using (await Within(limiter.AcquireAsync(good).AsTask()))
        {
            // Another key is served meanwhile.
        }

        _clock.Advance(TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(timed!));
        holder.Dispose();
        (await Within(waiter!)).Dispose();

        Assert.Equal(0, limiter.StatisticsOf(bad)!.Running);
        var waits = spans.Stopped.Where(span => span.GetTagItem("partition_key") is UnnamedKey).ToList();
        Assert.Equal(["granted", "timed_out"], waits.Select(span => (string)span.GetTagItem("outcome")!).Order());
    }

    /// <summary>
    /// A RateLimiting adapter's <c>AttemptAcquire</c> refused for a key whose <c>ToString</c> throws: a failed lease whose
    /// reason names the key by a placeholder, counted <c>would_wait</c> as any refusal. DEFECT (fixed): the refusal was
    /// counted, then its reason phrase threw the key's exception to the caller ("Assert.Null() Failure").
    /// </summary>
    [Fact]
    public async Task An_attempt_refused_for_a_key_whose_ToString_throws_is_a_failed_lease()
    {
        var name = $"review-key-faults-attempt-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        using var limiter = Concurrency(name);
        var adapter = limiter.AsPartitionedRateLimiter<FaultyKey>(key => key);
        var bad = new FaultyKey("bad");
        using var held = await Within(limiter.AcquireAsync(bad).AsTask());

        bad.ToStringThrows = true;
        RateLimitLease? lease = null;
        var thrown = Record.Exception(() => lease = adapter.AttemptAcquire(bad));

        Assert.Null(thrown);
        Assert.False(lease!.IsAcquired);
        Assert.True(lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason));
        Assert.Contains($"partition {UnnamedKey}", reason);
        Assert.Equal(1.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:would_wait"));
        using var other = adapter.AttemptAcquire(new FaultyKey("other"));
        Assert.True(other.IsAcquired, "another key's attempt is granted");
    }

    /// <summary>
    /// The library's own exceptions that name a key or a resource whose <c>ToString</c> throws: an adapter's key selector
    /// that gives <c>null</c> is an <see cref="ArgumentNullException"/>, a statistics lookup of a key with no partition
    /// a <see cref="KeyNotFoundException"/>, each naming it by a placeholder. DEFECT (fixed): each threw the key's own
    /// exception instead ("Assert.Throws() Failure: Exception type was not an exact match", InvalidOperationException).
    /// </summary>
    [Fact]
    public async Task Exceptions_naming_a_key_whose_ToString_throws_are_the_libraries_own()
    {
        using var limiter = Concurrency($"review-key-faults-texts-{Guid.NewGuid():N}");
        var bad = new FaultyKey("bad") { ToStringThrows = true };
        var nullKeys = limiter.AsPartitionedRateLimiter<FaultyKey>(_ => null!);

        var noKey = Assert.Throws<ArgumentNullException>(() => nullKeys.AttemptAcquire(bad));
        Assert.Contains("<resource ToString threw InvalidOperationException>", noKey.Message);

        var statistics = await limiter.GetStatisticsAsync();
        var missing = Assert.Throws<KeyNotFoundException>(() => statistics[bad]);
        Assert.Contains(UnnamedKey, missing.Message);
    }

    /// <summary>
    /// A key whose <c>GetHashCode</c> throws on the limiter's actor's thread, with an exception whose <c>Message</c> (and
    /// so <c>ToString</c>) throws too: its request alone fails, with an <see cref="ArgumentException"/> carrying that
    /// exception, counted once (<c>key_failed</c>), while another key's waiter still waits and is granted. DEFECT (fixed):
    /// formatting the key's exception threw inside the key-failure path, then again in the actor's backstop, so the
    /// actor was restarted by Akka: every partition was closed (the other key's waiter failed as disposed) and the
    /// failing request was never answered (its wait timed out: "The operation has timed out").
    /// </summary>
    [Fact]
    public async Task A_key_fault_whose_message_throws_fails_only_its_request()
    {
        var name = $"review-key-faults-message-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        using var limiter = Concurrency(name);
        var a = new FaultyKey("a");
        var holder = await Within(limiter.AcquireAsync(a).AsTask());
        var waiter = limiter.AcquireAsync(a, source: "waiter").AsTask();
        await Eventually(() => limiter.StatisticsOf(a) is { Waiting: 1 }, "a's second caller waits");

        var failed = limiter.AcquireAsync(new FaultyKey("bad") { HashThrowsOnActor = true }).AsTask();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Within(failed));
        Assert.IsType<NastyFault>(error.InnerException);
        Assert.Contains("<Message threw NastyFault>", error.Message);
        Assert.Equal(1.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.KeyFailedReason}"));
        Assert.Equal(0.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.HandlerFailedReason}"));
        Assert.False(waiter.IsCompleted, "the other key's waiter still waits");
        holder.Dispose();
        (await Within(waiter)).Dispose();
        using var next = await Within(limiter.AcquireAsync(new FaultyKey("next")).AsTask());
    }

    /// <summary>
    /// The partitioned actor's backstop, key-failure path and turn-fault path given an exception whose <c>Message</c>
    /// throws, logging to a logger that formats as it is called (as Akka's standard-out logger does before the
    /// configured ones start): each fails its request with the library's exception (the cause kept, its message a
    /// placeholder) and counts it, and none throws. DEFECT (fixed): each threw the message's exception (which, out of
    /// the backstop, restarted the actor: the end-to-end test above failed so, now and then, with the other key's
    /// waiter disposed).
    /// </summary>
    [Fact]
    public async Task The_backstop_and_the_key_failure_survive_an_exception_whose_message_throws()
    {
        var name = $"review-key-faults-backstop-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        var shared = new PartitionShared(new GatekeeperSettings(1, null, null, QueueFullMode.RejectNewcomer, name, name, new LimiterCounts(), _clock),
                                         FormattingLog(), new OnTheWay());
        var (handled, keyed, turned) = (Request(), Request(), Request());

        var thrown = Record.Exception(() =>
        {
            shared.HandlerFailed(handled, new NastyFault());
            shared.KeyFailed(keyed, new NastyFault());
            shared.Faulted(new FaultyKey("t") { ToStringThrows = true }, turned, new NastyFault());
        });

        Assert.Null(thrown);
        await Assert.ThrowsAsync<NastyFault>(() => Within(turned.WaitAsync(CancellationToken.None).AsTask()));
        var handlerError = await Assert.ThrowsAsync<InvalidOperationException>(() => Within(handled.WaitAsync(CancellationToken.None).AsTask()));
        Assert.Contains("<Message threw NastyFault>", handlerError.Message);
        var keyError = await Assert.ThrowsAsync<ArgumentException>(() => Within(keyed.WaitAsync(CancellationToken.None).AsTask()));
        Assert.IsType<NastyFault>(keyError.InnerException);
        Assert.Equal(2.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.HandlerFailedReason}"));
        Assert.Equal(1.0, metrics.Value($"{ActorQueueTelemetry.LimiterRejections}:{GatekeeperTelemetry.KeyFailedReason}"));

        static PartitionAcquireRequest Request() => new(new FaultyKey("k"), "review", ActorRefs.Nobody, signalQueued: false, permits: 1, priority: 0, timeout: null);
    }

    /// <summary>
    /// A traced wait that fails with an exception whose <c>Message</c> throws: its caller gets that very exception, and the
    /// span is recorded as an error with a placeholder description. DEFECT (fixed): the span's status read the message,
    /// so the caller got the message's exception instead ("Assert.Same() Failure").
    /// </summary>
    [Fact]
    public async Task A_traced_wait_failing_with_an_exception_whose_message_throws_rethrows_it()
    {
        using var spans = new SpanRecorder();
        var tracing = new WaitSpans(spans.Tracer, "review-key-faults-span-status");
        var request = new AcquireRequest("review", ActorRefs.Nobody, signalQueued: true, permits: 1, priority: 0, timeout: null);
        var cause = new NastyFault();

        var error = await Record.ExceptionAsync(() => tracing.TraceWaitAsync(request, Task.FromResult(1), ValueTask.FromException<ConcurrencyLease>(cause), 1, null, null).AsTask());

        Assert.Same(cause, error);
        var span = Assert.Single(spans.Stopped);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("<Message threw NastyFault>", span.StatusDescription);
    }

    /// <summary>
    /// A tracing listener whose <c>ActivityStarted</c> and <c>ActivityStopped</c> throw (the application's code, run on
    /// the waiting caller's thread): a caller that really waited still gets its lease, and its permits come back. DEFECT
    /// (fixed): the span's start threw to the caller once its request was queued, and the request, granted later to
    /// nobody, held its permit for good (the next caller waited for ever: "The operation has timed out").
    /// </summary>
    [Fact]
    public async Task A_throwing_tracing_listener_costs_a_waiter_nothing()
    {
        using var tracer = new ActivitySource($"review-key-faults-listener-{Guid.NewGuid():N}");
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => ReferenceEquals(source, tracer),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = _ => throw new InvalidOperationException("the listener failed at the start"),
            ActivityStopped = _ => throw new InvalidOperationException("the listener failed at the stop"),
        };
        ActivitySource.AddActivityListener(listener);
        using var limiter = new PartitionedConcurrencyLimiter<FaultyKey>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout,
                                                                         $"review-key-faults-listener-{Guid.NewGuid():N}", tracer, Sys);
        var key = new FaultyKey("k");
        var holder = await Within(limiter.AcquireAsync(key).AsTask());
        var waiter = limiter.AcquireAsync(key, source: "waiter").AsTask();
        await Eventually(() => limiter.StatisticsOf(key) is { Waiting: 1 }, "the second caller waits");

        holder.Dispose();
        (await Within(waiter)).Dispose();

        using var next = await Within(limiter.AcquireAsync(key).AsTask());
        Assert.Equal(1, limiter.StatisticsOf(key)!.Running);
    }

    /// <summary>A log whose every event is formatted as it is logged, on the logging thread, as Akka's standard-out logger formats it.</summary>
    private ILoggingAdapter FormattingLog()
    {
        var bus = new LoggingBus();
        bus.Subscribe(new FormattingSubscriber((ActorSystemImpl)Sys), typeof(LogEvent));
        return new BusLogging(bus, "review", typeof(KeyFaultsReviewTests), DefaultLogMessageFormatter.Instance);
    }

    /// <summary>
    /// A good key whose hash equals, exactly, that of a live key whose <c>Equals</c> has come to throw: the table asks the
    /// good key (the one looked up or published) whether they are equal, never the stored one, so the good key's calls
    /// are served, its partition made, its statistics read, while the throwing key's own calls still get its exception.
    /// DEFECT (fixed): the dictionary compared the stored key first, so the good key's caller got the other key's
    /// exception ("Assert.Null() Failure: Value is not null", the throwing key's InvalidOperationException).
    /// </summary>
    [Fact]
    public async Task A_good_key_colliding_with_a_throwing_key_never_meets_its_Equals()
    {
        using var limiter = Concurrency($"review-key-faults-collide-{Guid.NewGuid():N}");
        var bad = new FaultyKey("bad") { Hash = 42 };
        using var held = await Within(limiter.AcquireAsync(bad).AsTask());

        bad.EqualsThrows = true;
        var good = new FaultyKey("good") { Hash = 42 };
        Task<ConcurrencyLease>? first = null;
        var thrown = Record.Exception(() => { first = limiter.AcquireAsync(good).AsTask(); });

        Assert.Null(thrown);
        using (await Within(first!))
        {
            Assert.Equal(1, limiter.StatisticsOf(new FaultyKey("good") { Hash = 42 })!.Running);
        }

        Assert.Equal(2, limiter.PartitionCount);
        Assert.Throws<InvalidOperationException>(() => limiter.StatisticsOf(bad));
        bad.EqualsThrows = false;
    }

    /// <summary>Formats every log event told to it, on the teller's thread.</summary>
    private sealed class FormattingSubscriber(ActorSystemImpl system) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(Address.AllSystems, "/formatting-subscriber");

        public override IActorRefProvider Provider => system.Provider;

        protected override void TellInternal(object message, IActorRef sender) => _ = message.ToString();
    }
}
