using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 review of ActorQueue.Hosting's names: a limiter's or queue's name as configuration gives it (a blank one,
/// one padded with white space), the name a queue asked for in another case runs under, and the settings the registry
/// hands out once they were checked.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingNamesRound40Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="test"/> on a system of its own, then terminates it.</summary>
    private static async Task OnSystemAsync(string name, Func<Akka.Actor.ActorSystem, Task> test)
    {
        var system = ActorQueueRuntime.Create(name);
        try
        {
            await test(system);
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>Runs <paramref name="test"/> with a registry of one queue, on a system of its own.</summary>
    private static Task WithQueueAsync(string system, string queue, int maxSize, Func<ActorQueueOptions, ActorQueueRegistry, Task> test)
    {
        var options = new ActorQueueOptions();
        options.Queues[queue] = new QueueOptions { MaxSize = maxSize };
        return OnSystemAsync(system, async actorSystem =>
        {
            await using var registry = new ActorQueueRegistry(actorSystem, options, NullLoggerFactory.Instance);
            await test(options, registry);
        });
    }

    /// <summary>
    /// A blank name (an environment variable <c>ActorQueue__Queues____MaxSize</c> whose name was left out, a JSON
    /// <c>"": {…}</c>) or one padded with white space (<c>"fetch "</c>, which <c>GetQueue("fetch")</c> never finds) is
    /// refused at the start with an <see cref="ArgumentException"/> whose ParamName is the name's configuration key.
    /// Failed before: the start succeeded (Assert.ThrowsAnyAsync: no exception), the host running a limiter or queue
    /// named '' or 'fetch ' that only <c>GetQueue("")</c>/<c>GetQueue("fetch ")</c> reaches; the application's
    /// <c>GetQueue("fetch")</c> then failed at first use.
    /// </summary>
    [Theory]
    [InlineData("ActorQueue:Queues::MaxSize", "5", "ActorQueue:Queues:")]
    [InlineData("ActorQueue:Limiters::MaxRunning", "2", "ActorQueue:Limiters:")]
    [InlineData("ActorQueue:Queues: :MaxSize", "5", "ActorQueue:Queues: ")]
    [InlineData("ActorQueue:Queues:fetch :MaxSize", "5", "ActorQueue:Queues:fetch ")]
    [InlineData("ActorQueue:Limiters: llm:MaxRunning", "2", "ActorQueue:Limiters: llm")]
    public async Task A_blank_or_padded_name_in_configuration_fails_the_start_naming_its_key(string key, string value, string named)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();
        using var host = HostingReviewTestsRound2.BuildHost(s => s.AddActorQueue(configuration.GetSection(ActorQueueOptions.SectionName)));

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => host.StartAsync().WaitAsync(Bound));

        Assert.Equal(named, error.ParamName);
        Assert.Contains($"'{named}'", error.Message, StringComparison.Ordinal);
        Assert.Null(ActorQueueRuntime.Ambient); // nothing started
    }

    /// <summary>
    /// The same names set in code are refused by the registry made outside a host, as every other setting is.
    /// Failed before: no exception (Assert.Throws), a limiter named '' made on the system.
    /// </summary>
    [Fact]
    public Task A_blank_name_set_in_code_is_refused_by_the_registry_naming_its_key()
    {
        var options = new ActorQueueOptions();
        options.Limiters[""] = new LimiterOptions();
        return OnSystemAsync("names-round40-code", system =>
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => new ActorQueueRegistry(system, options, NullLoggerFactory.Instance));

            Assert.Equal("ActorQueue:Limiters:", error.ParamName);
            return Task.CompletedTask;
        });
    }

    /// <summary>
    /// A queue configured as <c>fetch</c> and first asked for as <c>GetQueue("FETCH")</c> runs under its configured name:
    /// its logs, metrics (the queue's <c>Name</c>) and the health check's data and description say <c>fetch</c>, as the
    /// limiters' do, whatever case the first caller wrote. Failed before: Assert.Equal("fetch", …) got "FETCH" (the
    /// first caller's spelling became the queue's name, so a dashboard or alert on <c>queue.fetch.size</c> saw nothing).
    /// </summary>
    [Fact]
    public Task A_queue_asked_for_in_another_case_runs_under_its_configured_name() =>
        WithQueueAsync("names-round40-case", "fetch", maxSize: 1, async (_, registry) =>
        {
            var queue = registry.GetQueue<int>("FETCH");
            var check = new ActorQueueHealthCheck(registry);
            var result = await check.CheckHealthAsync(new HealthCheckContext { Registration = new HealthCheckRegistration("actorqueue", check, null, null) });

            Assert.Equal("fetch", queue.Queue.Name);
            Assert.Same(queue, registry.GetQueue<int>("Fetch"));
            Assert.Contains("queue.fetch.size", result.Data.Keys);
        });

    /// <summary>
    /// The registry hands out the settings it checked when it was made: a change to the options object afterwards (a
    /// queue's MaxSize set to 0, a queue added naming a limiter that does not exist) reaches no queue, rather than
    /// failing at first use, unchecked. Failed before: GetQueue("q") threw ArgumentOutOfRangeException for
    /// <c>maxSize</c> ("Actual value was 0": the mutated value, never checked); GetQueue("late") would have made a
    /// queue the start never saw.
    /// </summary>
    [Fact]
    public Task Settings_changed_after_the_registry_was_made_do_not_reach_its_queues_unchecked() =>
        WithQueueAsync("names-round40-snapshot", "q", maxSize: 5, (options, registry) =>
        {
            options.Queues["q"].MaxSize = 0;
            options.Queues["late"] = new QueueOptions { Limiter = "missing" };

            Assert.Equal(5, registry.GetQueue<int>("q").Queue.Capacity);
            Assert.Throws<KeyNotFoundException>(() => registry.GetQueue<int>("late"));
            return Task.CompletedTask;
        });
}
