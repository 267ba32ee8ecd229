using ActorQueue.Runtime;
using Akka.Configuration;
using Xunit.Abstractions;

namespace ActorQueue.Tests;

/// <summary>
/// A TestKit whose actor system carries ActorQueue's configuration, keeps TestKit's event listener next to our
/// Serilog logger, and gives slow machines more time instead of sleeps in tests.
/// </summary>
public abstract class ActorQueueTestKit : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString("""
        akka {
          loggers = ["Akka.TestKit.TestEventListener, Akka.TestKit", "ActorQueue.Runtime.SerilogLoggerActor, ActorQueue.Actors"]
          test.timefactor = 3
          test.default-timeout = 10s
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig);

    protected ActorQueueTestKit(ITestOutputHelper? output = null)
        : base(TestConfig, output: output)
    {
    }

    /// <summary>A test kit whose system has <paramref name="overrides"/> (HOCON) over the test configuration.</summary>
    protected ActorQueueTestKit(string overrides, ITestOutputHelper? output = null)
        : base(ConfigurationFactory.ParseString(overrides).WithFallback(TestConfig), output: output)
    {
    }

    /// <summary>
    /// A queue stop timeout of 1 s instead of the default 5 s, for tests that dispose a queue under a worker that only
    /// ends on its token (or an error handler that never completes): the stop waits the whole timeout for them, and what
    /// those tests assert (what the disposal reports, that it completes) comes after it whatever its length.
    /// </summary>
    protected const string ShortStopTimeout = "actorqueue.queue.stop-timeout = 1s";

    /// <inheritdoc />
    /// <remarks>A <c>Debug.Assert</c> that failed inside this test's actors fails the test here (<see cref="DebugAssertions"/>).</remarks>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && DebugAssertions.TakeFailures(Sys) is [_, ..] failures)
        {
            throw new Xunit.Sdk.XunitException($"{failures.Count} Debug.Assert(s) failed inside actors:{Environment.NewLine}{string.Join(Environment.NewLine, failures)}");
        }
    }

    /// <summary>Awaits <paramref name="task"/>, failing instead of hanging after the default (time-factored) timeout.</summary>
    protected Task<T> Within<T>(Task<T> task) => task.WaitAsync(Dilated(TimeSpan.FromSeconds(10)));

    /// <summary>Awaits <paramref name="task"/> (rethrowing its exception), failing instead of hanging after the default (time-factored) timeout.</summary>
    protected Task Within(Task task) => task.WaitAsync(Dilated(TimeSpan.FromSeconds(10)));

    /// <summary>Runs <paramref name="work"/> as a new logical flow that inherits nothing (no lock identity) from the caller.</summary>
    protected static Task<T> InAnotherFlow<T>(Func<Task<T>> work)
    {
        using (ExecutionContext.SuppressFlow())
        {
            return Task.Run(work);
        }
    }

    /// <summary>Runs <paramref name="work"/> as a new logical flow that inherits nothing from the caller.</summary>
    protected static Task InAnotherFlow(Func<Task> work)
    {
        using (ExecutionContext.SuppressFlow())
        {
            return Task.Run(work);
        }
    }

    /// <summary>
    /// Polls <paramref name="condition"/> every millisecond until it holds, failing after the default (time-factored)
    /// timeout. For counts that an actor updates: a bounded wait for a state, never a bare sleep.
    /// </summary>
    protected Task Eventually(Func<bool> condition, string because) =>
        Poll.UntilAsync(condition, Dilated(TimeSpan.FromSeconds(10)), because);
}
