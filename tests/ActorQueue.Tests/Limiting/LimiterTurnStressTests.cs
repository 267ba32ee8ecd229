using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// Async callers and actor callers racing in one limiter's turn: weighted requests, cancellations, wait timeouts and
/// actors that stop while they hold or wait. The permits held never exceed the limit (counted by the callers
/// themselves, actors included), every caller finishes, and at rest the limiter and its gatekeeper hold and queue
/// nothing. A guard for the turn's hand-overs between threads and the actor, not a test of one ordering.
/// </summary>
public sealed class LimiterTurnStressTests : ActorQueueTestKit
{
    private const int Limit = 4;

    [Fact]
    public async Task Async_and_actor_callers_racing_in_the_turn_never_exceed_the_limit_and_leave_nothing_behind()
    {
        using var limiter = new ConcurrencyLimiter(Limit, system: Sys);
        var inside = new Inside();

        var actors = Enumerable.Range(0, 6).Select(n =>
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Sys.ActorOf(Props.Create(() => new Cycler(limiter.Gatekeeper, inside, 200, 1 + (n % 3), done)));
            return done.Task;
        }).ToArray();

        // Actors that stop while holding or waiting: their permits come back through death watch, in the turn.
        var quitters = Enumerable.Range(0, 4).Select(n => Sys.ActorOf(Props.Create(() => new Quitter(limiter.Gatekeeper, 1 + (n % 2))))).ToArray();

        var callers = Enumerable.Range(0, 12).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                var permits = 1 + ((caller + i) % 3);
                using var cancel = (caller + i) % 5 == 0 ? new CancellationTokenSource(TimeSpan.FromTicks(1 + (i % 50))) : null;
                ConcurrencyLease lease;
                try
                {
                    lease = (caller + i) % 7 == 0
                        ? await limiter.AcquireAsync(permits, priority: i % 2, waitTimeout: TimeSpan.FromMilliseconds(1), source: "timed")
                        : await limiter.AcquireAsync(permits, source: "caller", cancellationToken: cancel?.Token ?? default);
                }
                catch (Exception error) when (error is OperationCanceledException or ConcurrencyWaitTimeoutException)
                {
                    continue;
                }

                inside.Enter(permits);
                if (i % 2 == 0)
                {
                    await Task.Yield();
                }

                inside.Leave(permits);
                lease.Dispose();
            }
        })).ToArray();

        foreach (var quitter in quitters)
        {
            quitter.Tell(PoisonPill.Instance);
        }

        await Task.WhenAll(callers.Concat(actors)).WaitAsync(Dilated(TimeSpan.FromSeconds(120)));

        Assert.InRange(inside.Most, 1, Limit);
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "everything given back");
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
        Assert.Equal(Limit, (await limiter.AcquireAsync(Limit, source: "all of it")).Permits);
    }

    /// <summary>The permits callers say they hold, and the most they ever held at once.</summary>
    private sealed class Inside
    {
        private int _now;
        private int _most;

        public int Most => Volatile.Read(ref _most);

        public void Enter(int permits) => Poll.InterlockedMax(ref _most, Interlocked.Add(ref _now, permits));

        public void Leave(int permits) => Interlocked.Add(ref _now, -permits);
    }

    /// <summary>An actor that takes and gives back <c>permits</c> in a loop, <c>rounds</c> times, counting what it holds.</summary>
    private sealed class Cycler : ReceiveActor
    {
        public Cycler(IActorRef gatekeeper, Inside inside, int rounds, int permits, TaskCompletionSource done)
        {
            var round = 0;
            Receive<Granted>(granted =>
            {
                inside.Enter(permits);
                inside.Leave(permits);
                if (++round == rounds)
                {
                    gatekeeper.Tell(new Release(granted.LeaseId));
                    done.TrySetResult();
                    return;
                }

                gatekeeper.Tell(new ReleaseAndAcquire(granted.LeaseId, new Acquire("cycler", round + 1) { Permits = permits, ReplyQueued = false }));
            });
            Receive<Rejected>(rejected => done.TrySetException(new InvalidOperationException(rejected.Reason)));
            gatekeeper.Tell(new Acquire("cycler", 1) { Permits = permits, ReplyQueued = false });
        }
    }

    /// <summary>An actor that asks for permits and is stopped, holding or waiting, whichever came first.</summary>
    private sealed class Quitter : ReceiveActor
    {
        public Quitter(IActorRef gatekeeper, int permits)
        {
            ReceiveAny(_ => { });
            gatekeeper.Tell(new Acquire("quitter", 1) { Permits = permits, ReplyQueued = false });
        }
    }
}
