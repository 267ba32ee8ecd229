using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Review;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A limiter whose gatekeeper has not started yet: its turn is not open, so calls go by message, and nothing run in the
/// turn once it opens passes what is still on its way — a request, or a resize. The coordinator dispatcher has one
/// thread here, held by another actor until the calls are made, so the gatekeeper starts after them.
/// </summary>
public sealed class LimiterStartTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly ActorSystem _system = ActorSystem.Create("limiter-start", ConfigurationFactory.ParseString("""
        actorqueue.coordinator-dispatcher {
          type = ForkJoinDispatcher
          throughput = 100
          dedicated-thread-pool.thread-count = 1
        }
        """).WithFallback(ActorQueueRuntime.DefaultConfig));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _system.Terminate();

    [Fact]
    public async Task A_request_made_after_a_resize_that_went_by_message_is_served_on_the_new_limit()
    {
        const string name = "limiter-start-resize";
        var blocker = HoldTheCoordinatorThread(_system);
        using var hold = new ActorHold(name);
        using var limiter = new ConcurrencyLimiter(4, name: name, system: _system);

        var first = limiter.AcquireAsync("first, by message").AsTask(); // the turn is not open: it goes by message
        limiter.Resize(maxRunning: 1); // by message behind it
        hold.Arm(); // the gatekeeper's grant of the first holds its thread, the resize still in its mailbox
        blocker.Set();
        hold.WaitHeld("the gatekeeper granting the first request");

        var second = limiter.AcquireAsync("second, after the resize returned").AsTask();
        hold.Release();

        var held = await first.WaitAsync(Patience);
        await Poll.UntilAsync(() => limiter.WaitingCount == 1, Patience, "the second waits: the limit is 1 and the first holds it");
        Assert.False(second.IsCompleted, "granted on the old limit, past the resize still on its way");

        held.Dispose();
        (await second.WaitAsync(Patience)).Dispose();
        Assert.Equal(1, limiter.MaxRunning);
    }

    /// <summary>Holds the coordinator dispatcher's one thread until the returned event is set.</summary>
    private static ManualResetEventSlim HoldTheCoordinatorThread(ActorSystem system)
    {
        var go = new ManualResetEventSlim(false);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocker = system.ActorOf(Props.Create(() => new Blocker(go, started)).WithDispatcher("actorqueue.coordinator-dispatcher"));
        blocker.Tell("hold the dispatcher's thread");
        Assert.True(started.Task.Wait(Patience), "the blocker holds the coordinator dispatcher's thread");
        return go;
    }

    /// <summary>An actor on the coordinator dispatcher that holds its one thread until set.</summary>
    private sealed class Blocker : ReceiveActor
    {
        public Blocker(ManualResetEventSlim go, TaskCompletionSource started)
        {
            ReceiveAny(_ =>
            {
                started.TrySetResult();
                go.Wait(Patience);
            });
        }
    }
}
