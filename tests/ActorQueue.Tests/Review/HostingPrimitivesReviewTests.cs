using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review h151 (hosting): the health check while an actor system terminates without a coordinated shutdown
/// (<c>akka.coordinated-shutdown.run-by-actor-system-terminate = off</c>, so <c>Terminate()</c> goes straight to stopping
/// the user guardian's actors).
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingPrimitivesReviewTests
{
    /// <summary>Review h151 (primitives): racing cancellations, releases and disposals on dedicated threads, scopes, continuations.</summary>
    public sealed class Primitives(ITestOutputHelper output) : PrimitivesRacing(output);

    [Fact]
    public async Task A_Terminate_that_skips_the_coordinated_shutdown_reads_unhealthy_from_the_moment_actors_stop()
    {
        var system = ActorQueueRuntime.Create("hc-h151-terminate", ConfigurationFactory.ParseString(
            "akka.coordinated-shutdown.run-by-actor-system-terminate = off"));
        using var gate = new ManualResetEventSlim(false);
        try
        {
            var options = new ActorQueueOptions();
            options.Limiters["llm"] = new LimiterOptions { MaxRunning = 1 };
            var registry = new ActorQueueRegistry(system, options, NullLoggerFactory.Instance);
            var check = new ActorQueueHealthCheck(registry);
            var context = new HealthCheckContext { Registration = new HealthCheckRegistration("actorqueue", check, HealthStatus.Unhealthy, tags: null) };
            Assert.Equal(HealthStatus.Healthy, (await check.CheckHealthAsync(context)).Status);

            // A user actor busy on its own thread holds the user guardian's stop (and so the system's termination) open.
            var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var holder = system.ActorOf(Props.Create(() => new Holder(gate, holding)).WithDispatcher("akka.io.pinned-dispatcher"), "holder");
            holder.Tell("hold");
            await holding.Task.WaitAsync(Bound);
            var canary = system.ActorOf(Props.Create(() => new Canary()), "canary");
            var canaryStopped = canary.WatchAsync();

            var terminated = system.Terminate();
            await canaryStopped.WaitAsync(Bound); // the guardian is stopping its actors: the system is ending
            Assert.False(system.HasExtension<CoordinatedShutdown>()); // no coordinated shutdown ran
            Assert.False(terminated.IsCompleted);
            var ending = await check.CheckHealthAsync(context);
            gate.Set();
            await terminated.WaitAsync(Bound);

            Assert.Equal(HealthStatus.Unhealthy, ending.Status);
            Assert.Equal("ActorQueue's actor system 'hc-h151-terminate' is terminating (its actors are stopping)", ending.Description);
        }
        finally
        {
            gate.Set();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>Blocks its (pinned) thread on a message until the test lets it go.</summary>
    private sealed class Holder : ReceiveActor
    {
        public Holder(ManualResetEventSlim gate, TaskCompletionSource holding) =>
            Receive<string>(_ =>
            {
                holding.TrySetResult();
                gate.Wait(Bound);
            });
    }

    private sealed class Canary : ReceiveActor;

    /// <summary>How long a step may take before the test fails instead of hanging (the check machine is slower).</summary>
    private static TimeSpan Bound => TimeSpan.FromSeconds(60);
}
