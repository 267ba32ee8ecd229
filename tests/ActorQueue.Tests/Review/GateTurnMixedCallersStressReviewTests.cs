using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 0d14ee8 (the unpartitioned gatekeeper's state runs in a turn shared by facade threads and the actor):
/// facade callers (weighted, prioritised, some cancelled, some timed out) and actor callers (some stopped while they
/// hold or wait) race through one limiter;
/// the permits held never exceed the limit, every call ends, and at rest nothing is held, waiting or lost (the whole
/// limit can be taken at once), and no turn faulted (logged). Run it in Debug as well: the loan's and the pool's asserts
/// run on facade threads now, where the turn catches what they throw and only logs it.
/// </summary>
public sealed class GateTurnMixedCallersStressReviewTests : ActorQueueTestKit
{
    private const int Limit = 3;

    [Fact]
    public async Task Facade_and_actor_callers_racing_through_the_turn_never_exceed_the_limit_and_leave_nothing_behind()
    {
        using var limiter = new ConcurrencyLimiter(Limit, name: "review-turn-stress", system: Sys);
        var errors = CreateTestProbe();
        Sys.EventStream.Subscribe(errors.Ref, typeof(Akka.Event.Error)); // a turn's fault (a Debug.Assert on a facade thread too) is only logged
        var held = 0;
        var peak = 0;

        void Enter(int permits)
        {
            var now = Interlocked.Add(ref held, permits);
            int seen;
            while (now > (seen = Volatile.Read(ref peak)) && Interlocked.CompareExchange(ref peak, now, seen) != seen)
            {
            }
        }

        var actorsDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var actorRounds = 0;
        Action<int> enter = Enter;
        Action done = () =>
        {
            if (Interlocked.Increment(ref actorRounds) == 3)
            {
                actorsDone.SetResult();
            }
        };
        var gatekeeper = limiter.Gatekeeper;
        for (var i = 0; i < 3; i++)
        {
            var permits = i % 2 + 1;
            Action leave = () => Interlocked.Add(ref held, -permits);
            Sys.ActorOf(Props.Create(() => new LoopingCaller(gatekeeper, 300, permits, enter, leave, done)));
        }

        // Actors stopped while they hold or wait: their permits come back through death watch, in the turn.
        var quitters = Enumerable.Range(0, 4).Select(n => Sys.ActorOf(Props.Create(() => new Quitter(gatekeeper, 1 + (n % 2))))).ToList();

        var facades = Enumerable.Range(0, 6).Select(worker => InAnotherFlow(async () =>
        {
            var random = new Random(worker);
            for (var round = 0; round < 400; round++)
            {
                var permits = random.Next(1, 3);
                using var cancel = new CancellationTokenSource();
                if (random.Next(8) == 0)
                {
                    cancel.CancelAfter(random.Next(0, 2));
                }

                ConcurrencyLease lease;
                try
                {
                    var timeout = random.Next(7) == 0 ? TimeSpan.FromMilliseconds(1) : (TimeSpan?)null;
                    lease = await limiter.AcquireAsync(permits, priority: random.Next(3), waitTimeout: timeout, cancellationToken: cancel.Token);
                }
                catch (Exception error) when (error is OperationCanceledException or ConcurrencyWaitTimeoutException)
                {
                    continue;
                }

                Enter(permits);
                if (random.Next(4) == 0)
                {
                    await Task.Yield();
                }

                Interlocked.Add(ref held, -permits);
                lease.Dispose();
            }
        })).ToList();

        quitters.ForEach(quitter => quitter.Tell(PoisonPill.Instance));
        await Within(Task.WhenAll(facades));
        await Within(actorsDone.Task);

        Assert.True(peak <= Limit, $"{peak} permits were held at once with a limit of {Limit}");
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing held or waiting at rest");
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0, Limit), (status.Running, status.Waiting, status.MaxRunning));
        using var all = await Within(limiter.AcquireAsync(Limit).AsTask()); // no permit was lost
        Assert.Equal(Limit, limiter.RunningCount);
        errors.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    /// <summary>Asks for permits and is stopped, holding or waiting, whichever came first.</summary>
    private sealed class Quitter : ReceiveActor
    {
        public Quitter(IActorRef gatekeeper, int permits)
        {
            ReceiveAny(_ => { });
            gatekeeper.Tell(new Acquire("quitter", 1) { Permits = permits, ReplyQueued = false });
        }
    }

    /// <summary>Acquires <c>permits</c> and releases them, <c>rounds</c> times, through the protocol.</summary>
    private sealed class LoopingCaller : ReceiveActor
    {
        public LoopingCaller(IActorRef gatekeeper, int rounds, int permits, Action<int> enter, Action leave, Action done)
        {
            var round = 0;
            void Next()
            {
                if (round++ == rounds)
                {
                    done();
                    return;
                }

                gatekeeper.Tell(new Acquire("actor", round) { Permits = permits, ReplyQueued = false });
            }

            Receive<Granted>(granted =>
            {
                enter(permits);
                leave();
                gatekeeper.Tell(new Release(granted.LeaseId));
                Next();
            });
            Receive<Rejected>(rejected => throw new InvalidOperationException($"rejected: {rejected.Reason}"));
            Next();
        }
    }
}
