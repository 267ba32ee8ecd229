using ActorQueue.Primitives;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Bench;

/// <summary>
/// The contended lock's cycle without the scheduling luck of <c>lock-contended</c>, and the cheapest message-based
/// cycles on the same machine (its floor). <c>lock-contended</c>'s section holds no <c>await</c>, so a round is fast
/// when the 16 tasks happen to run one after another and slow once two of them collide and the FIFO hand-off keeps
/// every later operation queued (a convoy); <c>lock-contended-convoy</c> starts all tasks queued behind a holder, so
/// every operation is a contended hand-off.
/// </summary>
internal static class LockFloorScenarios
{
    private const int Tasks = 16;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        yield return new Scenario("lock-contended-convoy", "ops/s",
        [
            new(Runner.Ours, () => ConvoyLock(sizes.LockContendedPerTask, new AsyncLock(system))),
            new("NitoAsyncEx", () => ConvoyNitoLock(sizes.LockContendedPerTask, new Nito.AsyncEx.AsyncLock())),
        ]);

        // One Tell per operation to a bare actor that completes the sender's TaskCompletionSource, and the smallest
        // actor lock: one Tell to acquire (completed when granted), one Tell to release. Both on the coordinators'
        // dispatcher, as the lock's coordinator is.
        var dispatcher = ActorQueueRuntime.Resolve(system).Settings.CoordinatorDispatcher;
        yield return new Scenario("lock-floor", "ops/s",
        [
            new("tell-1-per-op", () => TellFloor(system, dispatcher, sizes.LockContendedPerTask)),
            new("actor-lock-2-per-op", () => ActorLockFloor(system, dispatcher, sizes.LockContendedPerTask)),
        ]);
    }

    private static async Task<double> ConvoyLock(int perTask, AsyncLock @lock)
    {
        var counter = 0;
        await using (@lock)
        {
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var holder = Task.Run(async () =>
            {
                await @lock.AcquireAsync();
                held.SetResult();
                await go.Task;
                @lock.Release();
            });
            await held.Task;
            var result = await Runner.OpsPerSecond((long)Tasks * perTask, async () =>
            {
                var tasks = Start(perTask, async () =>
                {
                    await @lock.AcquireAsync();
                    counter++;
                    @lock.Release();
                });
                while (@lock.State.Announced < Tasks)
                {
                    await Task.Yield();
                }

                go.SetResult();
                await Task.WhenAll(tasks);
            });
            await holder;
            return result;
        }
    }

    private static async Task<double> ConvoyNitoLock(int perTask, Nito.AsyncEx.AsyncLock @lock)
    {
        var counter = 0;
        var holder = await @lock.LockAsync();
        return await Runner.OpsPerSecond((long)Tasks * perTask, async () =>
        {
            var started = 0;
            var tasks = Start(perTask, async () =>
            {
                using (await @lock.LockAsync())
                {
                    counter++;
                }
            }, () => Interlocked.Increment(ref started));
            while (Volatile.Read(ref started) < Tasks)
            {
                await Task.Yield();
            }

            holder.Dispose(); // every task has called LockAsync at least once: they all queued behind the holder
            await Task.WhenAll(tasks);
        });
    }

    private static Task[] Start(int perTask, Func<Task> iteration, Action? started = null) =>
        Enumerable.Range(0, Tasks).Select(_ => Task.Run(async () =>
        {
            var first = iteration();
            started?.Invoke();
            await first;
            for (var i = 1; i < perTask; i++)
            {
                await iteration();
            }
        })).ToArray();

    private static async Task<double> TellFloor(ActorSystem system, string dispatcher, int perTask)
    {
        var actor = system.ActorOf(Props.Create(() => new Completer()).WithDispatcher(dispatcher));
        try
        {
            return await Scenarios.Parallel(Tasks, perTask, () =>
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                actor.Tell(done, ActorRefs.NoSender);
                return done.Task;
            });
        }
        finally
        {
            system.Stop(actor);
        }
    }

    private static async Task<double> ActorLockFloor(ActorSystem system, string dispatcher, int perTask)
    {
        var actor = system.ActorOf(Props.Create(() => new SmallestActorLock()).WithDispatcher(dispatcher));
        var counter = 0;
        try
        {
            return await Scenarios.Parallel(Tasks, perTask, async () =>
            {
                var granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                actor.Tell(granted, ActorRefs.NoSender);
                await granted.Task;
                counter++;
                actor.Tell(SmallestActorLock.Release, ActorRefs.NoSender);
            });
        }
        finally
        {
            system.Stop(actor);
        }
    }

    /// <summary>Completes every completion it is sent.</summary>
    private sealed class Completer : UntypedActor
    {
        protected override void OnReceive(object message) => ((TaskCompletionSource)message).TrySetResult();
    }

    /// <summary>A FIFO lock in an actor: a completion to acquire, <see cref="Release"/> to release.</summary>
    private sealed class SmallestActorLock : UntypedActor
    {
        public static readonly object Release = new();

        private readonly Queue<TaskCompletionSource> _waiting = new();
        private bool _held;

        protected override void OnReceive(object message)
        {
            if (message is TaskCompletionSource acquire)
            {
                if (_held)
                {
                    _waiting.Enqueue(acquire);
                }
                else
                {
                    _held = true;
                    acquire.TrySetResult();
                }
            }
            else if (!_waiting.TryDequeue(out var next))
            {
                _held = false;
            }
            else
            {
                next.TrySetResult();
            }
        }
    }
}
