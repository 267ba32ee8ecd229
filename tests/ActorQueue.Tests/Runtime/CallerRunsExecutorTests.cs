using ActorQueue.Actors;
using ActorQueue.Primitives;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Actor.Internal;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// The coordinator dispatcher's executor: an idle coordinator told something by a pool thread outside any actor runs
/// on that thread before <c>Tell</c> returns; never on other threads' terms (dedicated threads, inside actors), and the
/// continuations it completes are queued, never run inside the call that released them.
/// </summary>
public class CallerRunsExecutorTests : ActorQueueTestKit
{
    private const string CoordinatorDispatcher = "actorqueue.coordinator-dispatcher";

    [Fact]
    public async Task A_pool_thread_outside_any_actor_runs_an_idle_coordinator_before_tell_returns()
    {
        var recorder = Sys.ActorOf(Props.Create(() => new Echo()).WithDispatcher(CoordinatorDispatcher));

        // A new actor starts asynchronously, and one that has just answered may still be finishing its run, so
        // try until the coordinator is idle when told: then it must run on the telling thread.
        var ranOnCaller = await Task.Run(async () =>
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                OutsideAnyActor();
                var handled = new Handled();
                recorder.Tell(handled);
                if (handled.Thread == Environment.CurrentManagedThreadId)
                {
                    return true;
                }

                await Within(handled.Done.Task);
            }

            return false;
        });

        Assert.True(ranOnCaller);
    }

    [Fact]
    public async Task A_dedicated_thread_never_runs_a_coordinator()
    {
        var recorder = Sys.ActorOf(Props.Create(() => new Echo()).WithDispatcher(CoordinatorDispatcher));
        await Within(recorder.Ask<Handled>(new Handled()));
        var handledOnSender = 0;
        var sender = new Thread(() =>
        {
            for (var i = 0; i < 20; i++)
            {
                var handled = new Handled();
                recorder.Tell(handled);
                handled.Done.Task.Wait(Dilated(TimeSpan.FromSeconds(10)));
                if (handled.Thread == Environment.CurrentManagedThreadId)
                {
                    handledOnSender++;
                }
            }
        });

        sender.Start();
        await Within(Task.Factory.StartNew(sender.Join, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)); // not a pool thread: the Echo needs those

        Assert.Equal(0, handledOnSender);
    }

    [Fact]
    public async Task An_actor_telling_a_coordinator_never_runs_it_nested_in_its_own_handler()
    {
        var recorder = Sys.ActorOf(Props.Create(() => new Echo()).WithDispatcher(CoordinatorDispatcher));
        var teller = Sys.ActorOf(Props.Create(() => new Teller(recorder)));
        await Within(recorder.Ask<Handled>(new Handled()));
        var nested = 0;

        for (var i = 0; i < 20; i++)
        {
            var handled = await Within(teller.Ask<Handled>("go"));
            await Within(handled.Done.Task);

            // Nested means: on the teller's thread before the teller's Tell had returned.
            if (handled.Thread == handled.TellerThread && !handled.TellerReturnedBeforeHandled)
            {
                nested++;
            }
        }

        Assert.Equal(0, nested);
    }

    [Fact]
    public async Task An_uncontended_acquire_from_a_pool_thread_is_answered_before_it_is_awaited()
    {
        var answeredAtOnce = await Task.Run(async () =>
        {
            await using var limiter = new ConcurrencyLimiter(1, system: Sys);
            for (var attempt = 0; attempt < 100; attempt++)
            {
                OutsideAnyActor();
                var acquire = limiter.AcquireAsync("t");
                var atOnce = acquire.IsCompleted;
                (await acquire).Dispose();
                if (atOnce)
                {
                    return true;
                }
            }

            return false;
        });

        Assert.True(answeredAtOnce);
    }

    [Fact]
    public async Task A_waiter_granted_by_a_release_that_ran_the_gatekeeper_resumes_after_the_release_returns()
    {
        var resumedInsideRelease = await Task.Run(async () =>
        {
            await using var limiter = new ConcurrencyLimiter(1, system: Sys);
            return await UntilReleaseRunsInline(async () =>
            {
                var held = await limiter.AcquireAsync("holder");
                var releasing = new Releasing();
                var waiter = ResumeAsync(limiter.AcquireAsync("waiter"), releasing);
                var queued = limiter.WaitingCount == 1; // its request ran in the gatekeeper's turn, on this thread
                var ranInline = Release(held.Dispose, releasing);
                var grantedInTurnHere = queued && limiter.WaitingCount == 0; // the release ran in the turn here, and granted it
                return (ranInline || grantedInTurnHere, await Within(waiter));
            });
        });

        Assert.False(resumedInsideRelease, "the waiter's continuation ran inside Dispose");
    }

    [Fact]
    public async Task A_lock_handed_over_by_a_release_that_ran_the_coordinator_resumes_the_next_owner_after_it_returns()
    {
        var resumedInsideRelease = await Task.Run(async () =>
        {
            await using var @lock = new AsyncLock(Sys);
            return await UntilReleaseRunsInline(async () =>
            {
                await @lock.AcquireAsync();
                var releasing = new Releasing();
                var next = InAnotherFlow(async () =>
                {
                    await @lock.AcquireAsync();
                    var inside = releasing.IsInsideOnThisThread;
                    @lock.Release();
                    return inside;
                });
                await Poll.UntilAsync(() => @lock.WaitingCount == 1, Dilated(TimeSpan.FromSeconds(10)), "the second flow waits");
                var handsOver = @lock.State.IsHeadPublished; // then the release grants the waiter on this thread itself
                var ranInline = Release(@lock.Release, releasing);
                return (ranInline || handsOver, await Within(next));
            });
        });

        Assert.False(resumedInsideRelease, "the next owner's continuation ran inside Release");
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> (hold, queue a waiter, release) until its release ran the coordinator on the
    /// releasing thread (the coordinator may still be finishing an earlier run); returns whether the waiter resumed
    /// while that release was still running.
    /// </summary>
    private static async Task<bool> UntilReleaseRunsInline(Func<Task<(bool RanInline, bool ResumedInside)>> attempt)
    {
        for (var i = 0; i < 100; i++)
        {
            var (ranInline, resumedInside) = await attempt();
            if (ranInline)
            {
                return resumedInside;
            }
        }

        Assert.Fail("no release ran its coordinator inline in 100 attempts");
        return false;
    }

    /// <summary>Releases with <paramref name="releasing"/> set meanwhile; returns whether the release ran the coordinator here.</summary>
    private static bool Release(Action release, Releasing releasing)
    {
        OutsideAnyActor();
        var before = CallerRunsExecutorConfigurator.InlineRunsOnThisThread;
        releasing.Enter();
        release();
        releasing.Leave();
        return CallerRunsExecutorConfigurator.InlineRunsOnThisThread > before;
    }

    /// <summary>
    /// TestKit leaves its test actor as the "current actor" on whichever pool thread built the test class, and pool
    /// threads are shared by every test, so a pool thread here may look as if it were inside an actor. Clear it.
    /// </summary>
    private static void OutsideAnyActor() => InternalCurrentActorCellKeeper.Current = null;

    private static async Task<bool> ResumeAsync(ValueTask<ConcurrencyLease> acquire, Releasing releasing)
    {
        using var lease = await acquire;
        return releasing.IsInsideOnThisThread;
    }

    /// <summary>
    /// Marks the release call in progress and its thread. A continuation that resumes on another thread meanwhile is
    /// fine (it was queued); one that resumes on the releasing thread while the call is still in progress ran inline.
    /// </summary>
    private sealed class Releasing
    {
        private volatile int _thread = -1;

        public bool IsInsideOnThisThread => _thread == Environment.CurrentManagedThreadId;

        public void Enter() => _thread = Environment.CurrentManagedThreadId;

        public void Leave() => _thread = -1;
    }

    /// <summary>A message that notes the thread it was handled on (and, when a teller sent it, the teller's side).</summary>
    private sealed class Handled
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public volatile int Thread = -1;

        public volatile int TellerThread = -2;

        public volatile bool TellerReturned;

        public volatile bool TellerReturnedBeforeHandled;
    }

    /// <summary>Marks each <see cref="Handled"/> with the thread that handled it, and answers it.</summary>
    private sealed class Echo : ReceiveActor
    {
        public Echo() => Receive<Handled>(handled =>
        {
            handled.TellerReturnedBeforeHandled = handled.TellerReturned;
            handled.Thread = Environment.CurrentManagedThreadId;
            handled.Done.TrySetResult();
            if (!Sender.IsNobody())
            {
                Sender.Tell(handled); // answers an Ask; a plain Tell has nobody to answer
            }
        });
    }

    /// <summary>An ordinary actor that tells the echo from inside its handler, then answers with what it sent.</summary>
    private sealed class Teller : ReceiveActor
    {
        public Teller(IActorRef echo) => ReceiveAny(_ =>
        {
            var handled = new Handled { TellerThread = Environment.CurrentManagedThreadId };
            echo.Tell(handled, ActorRefs.NoSender);
            handled.TellerReturned = true;
            Sender.Tell(handled);
        });
    }
}
