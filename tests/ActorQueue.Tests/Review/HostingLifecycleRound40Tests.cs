using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 review of ActorQueue.Hosting's lifecycle as an application drives a Generic Host: a host started twice
/// (<c>StartAsync</c> then <c>RunAsync</c>, which starts it again) and what it leaves behind once stopped.
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
}
