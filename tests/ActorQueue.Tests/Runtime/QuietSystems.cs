using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// What the tests that stop or terminate their own actor systems share: a system of their own that logs only warnings,
/// a guard that turns a hang into a failure (not a timing assertion), and limits of one slot or one call whose callers
/// wait without a deadline.
/// </summary>
internal static class QuietSystems
{
    /// <summary>Turns a hang into a test failure.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);

    /// <summary>One permit; a caller waits for it without a deadline.</summary>
    public static readonly ConcurrencyLimit OneSlot = new(1) { WaitTimeout = Timeout.InfiniteTimeSpan };

    private static readonly Config Quiet = ConfigurationFactory.ParseString("""
        akka.loglevel = WARNING
        akka.stdout-loglevel = OFF
        """);

    /// <summary>One call in flight (rates far from binding); a caller waits for it without a deadline.</summary>
    public static ModelApiLimiterOptions OneCall => new(maxConcurrent: 1, requestsPerPeriod: 1000, tokensPerPeriod: 1_000_000, TimeSpan.FromMinutes(1))
    {
        WaitTimeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>A new actor system named <paramref name="name"/> and a unique suffix, logging only warnings.</summary>
    public static ActorSystem New(string name) => ActorQueueRuntime.Create($"{name}-{Guid.NewGuid():N}", Quiet);
}
