using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 review of ActorQueue.Hosting's lifecycle as an application drives a Generic Host: a host started twice
/// (<c>StartAsync</c> then <c>RunAsync</c>, which starts it again) and what it leaves behind once stopped, on its own
/// actor system or on one the application owns.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingLifecycleRound40Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>
    /// <c>await host.StartAsync(); … await host.RunAsync();</c> starts the host's services twice (RunAsync starts the
    /// host again), and so ActorQueue's hosted service. Once the host has stopped, its actor system (terminated) must no
    /// longer be the facades' default. Failed before: Assert.Null failed with the host's terminated system still
    /// <c>ActorQueueRuntime.Default</c>: each start pushed it as the default and the stop released one push, so every
    /// facade the process made afterwards without <c>system:</c> was made on a terminated system.
    /// </summary>
    [Fact]
    public async Task A_host_started_twice_is_no_longer_the_default_system_once_stopped()
    {
        using var host = HostingReviewTestsRound2.BuildHost(s => s.AddAkka("lifecycle-round40-twice", b => b.WithActorQueue()).AddActorQueue());
        await host.StartAsync().WaitAsync(Bound);
        await host.StartAsync().WaitAsync(Bound);
        var system = host.Services.GetRequiredService<ActorSystem>();
        Assert.Same(system, ActorQueueRuntime.Ambient);

        await host.StopAsync().WaitAsync(Bound);

        Assert.True(system.WhenTerminated.IsCompleted);
        Assert.Null(ActorQueueRuntime.Ambient);
    }

    /// <summary>
    /// A host that joined an actor system the application owns (registered as a service, outliving the host: a
    /// TestKit's <c>Sys</c>, one system for several hosts) leaves it usable once stopped and disposed: a queue made on it
    /// afterwards starts and processes. Failed before: Assert.True failed, the queue's StartAsync not completing within
    /// 10 s: the hosted service had attached the host's ILoggerFactory to the system (for facades without a logger)
    /// and left it there, disposed with the host, so the new queue's router, making its logger from a disposed factory,
    /// never answered.
    /// </summary>
    [Fact]
    public async Task An_application_system_the_host_joined_still_runs_new_queues_once_the_host_is_disposed()
    {
        var system = ActorQueueRuntime.Create("lifecycle-round40-own");
        WorkQueue<int>? queue = null;
        try
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(system).AddActorQueue();
            using (var host = builder.Build())
            {
                await host.StartAsync().WaitAsync(Bound);
                await host.StopAsync().WaitAsync(Bound);
            }

            queue = new WorkQueue<int>(10, system: system);
            var started = await Poll.CompletesWithin(queue.StartAsync(), Bound);

            Assert.True(started, "a queue made on the application's system after the host was disposed did not start");
            var processed = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            await queue.ProcessAsync((item, _) => Task.FromResult(processed.TrySetResult(item)), 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync(7));
            Assert.Equal(7, await processed.Task.WaitAsync(Bound));
        }
        finally
        {
            queue?.Dispose();
            await system.Terminate().WaitAsync(Bound);
        }
    }
}
