using ActorQueue.Actors;
using ActorQueue.Primitives;
using Akka.Actor;
using AqLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Bench;

/// <summary>
/// The paths users take beyond the facade loops of <see cref="Scenarios"/>: actors as limiter callers, work queues with a
/// limit, the semaphore and the event under their everyday loads, and a limiter held across an await — each against the
/// peer a user would pick instead.
/// </summary>
internal static class UserPathScenarios
{
    private const int QueueWorkers = 4;

    public static IEnumerable<Scenario> All(ActorSystem system, Sizes sizes)
    {
        var actorOps = sizes.ContendedPerTask * 16;
        yield return new Scenario("limiter-actor-callers", "ops/s",
        [
            new(Runner.Ours, () => ActorCallers(system, 32, actorOps / 32, 4, lean: false)),
            new("facade-32-tasks", () => Scenarios.Contended(32, actorOps / 32, new AqLimiter(4, system: system), yieldWhileHeld: false)),
            new(Floors.Bare, () => Floors.ActorCallers(system, 32, actorOps / 32, 4)),
        ], new Target("facade-32-tasks", 0.8));

        // The same loop in the protocol's lean form: no Queued replies, and each release carries the next acquire.
        yield return new Scenario("limiter-actor-callers-lean", "ops/s",
        [
            new(Runner.Ours, () => ActorCallers(system, 32, actorOps / 32, 4, lean: true)),
            new("facade-32-tasks", () => Scenarios.Contended(32, actorOps / 32, new AqLimiter(4, system: system), yieldWhileHeld: false)),
        ], new Target("facade-32-tasks", 0.8));

        yield return new Scenario("workqueue-limited", "ops/s",
        [
            new(Runner.Ours, () => WorkQueueItems(system, sizes.QueueItems, concurrencyLimit: QueueWorkers)),
            new("Parallel.ForEachAsync", () => ParallelItems(sizes.QueueItems)),
        ], new Target("Parallel.ForEachAsync", 1.0));

        yield return new Scenario("workqueue-shared-limiter", "ops/s",
        [
            new(Runner.Ours, () => WorkQueueSharedItems(system, sizes.QueueItems)),
            new("Parallel.ForEachAsync", () => ParallelItems(sizes.QueueItems)),
        ], new Target("Parallel.ForEachAsync", 1.0));

        yield return new Scenario("workqueue-unlimited", "ops/s",
        [
            new(Runner.Ours, () => WorkQueueItems(system, sizes.QueueItems, concurrencyLimit: null)),
            new("Parallel.ForEachAsync", () => ParallelItems(sizes.QueueItems)),
        ], new Target("Parallel.ForEachAsync", 1.0));

        yield return new Scenario("semaphore-16-tasks", "ops/s",
        [
            new(Runner.Ours, () => SemaphoreTasks(new AsyncSemaphore(4, system), 16, sizes.LockContendedPerTask)),
            new("NitoAsyncEx", () => NitoSemaphoreTasks(new Nito.AsyncEx.AsyncSemaphore(4), 16, sizes.LockContendedPerTask)),
        ], new Target("NitoAsyncEx", 0.5));

        var sets = Math.Max(10, sizes.PingPongTurns / 100);
        yield return new Scenario("event-1000-waiters", "wakes/s",
        [
            new(Runner.Ours, () => EventFanOut(() => new AsyncEvent(system), e => e.WaitAsync(), e => e.Set(), e => e.DisposeAsync(), sets)),
            new("NitoAsyncEx", () => EventFanOut(() => new Nito.AsyncEx.AsyncManualResetEvent(), e => e.WaitAsync(), e => e.Set(), _ => default, sets)),
        ], new Target("NitoAsyncEx", 0.5));

        yield return new Scenario("limiter-hold-across-await", "ops/s",
        [
            new(Runner.Ours, () => Scenarios.Contended(256, sizes.ContendedPerTask / 4, new AqLimiter(8, system: system))),
            new("RateLimiting", () => Scenarios.ContendedRateLimiter(256, sizes.ContendedPerTask / 4, Scenarios.NewRateLimiter(8))),
            new(Floors.Bare, () => Floors.TaskCallers(system, 256, sizes.ContendedPerTask / 4, 8)),
        ], new Target("RateLimiting", 1.0));
    }

    /// <summary>
    /// <paramref name="actors"/> actors each acquire and release through the gatekeeper's protocol, as a user's actors do;
    /// <paramref name="lean"/>: without Queued replies, and with each release and the next acquire in one message.
    /// </summary>
    private static async Task<double> ActorCallers(ActorSystem system, int actors, int perActor, int slots, bool lean)
    {
        await using var limiter = new AqLimiter(slots, system: system);
        var done = Enumerable.Range(0, actors).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var callers = done.Select(d => system.ActorOf(Props.Create(() => new LimiterCaller(limiter.Gatekeeper, perActor, d, lean)))).ToArray();
        try
        {
            return await Runner.OpsPerSecond((long)actors * perActor, async () =>
            {
                foreach (var caller in callers)
                {
                    caller.Tell(LimiterCaller.Go.Instance);
                }

                await Task.WhenAll(done.Select(d => d.Task));
            });
        }
        finally
        {
            foreach (var caller in callers)
            {
                caller.Tell(PoisonPill.Instance);
            }
        }
    }

    private static async Task<double> WorkQueueItems(ActorSystem system, int items, int? concurrencyLimit)
    {
        await using var queue = new WorkQueue<int>(100, Timeout.InfiniteTimeSpan, concurrencyLimit, system: system);
        return await Runner.OpsPerSecond(items, () => queue.BatchProcessAsync(Enumerable.Range(0, items), _ => Task.CompletedTask, QueueWorkers));
    }

    /// <summary>The queue's workers share a limiter of as many permits as workers with nobody else: each holds its permit across its items.</summary>
    private static async Task<double> WorkQueueSharedItems(ActorSystem system, int items)
    {
        await using var limiter = new AqLimiter(QueueWorkers, system: system);
        await using var queue = new WorkQueue<int>(100, Timeout.InfiniteTimeSpan, limiter, system: system);
        return await Runner.OpsPerSecond(items, () => queue.BatchProcessAsync(Enumerable.Range(0, items), _ => Task.CompletedTask, QueueWorkers));
    }

    private static Task<double> ParallelItems(int items) =>
        Runner.OpsPerSecond(items, () => System.Threading.Tasks.Parallel.ForEachAsync(Enumerable.Range(0, items),
            new ParallelOptions { MaxDegreeOfParallelism = QueueWorkers }, (_, _) => ValueTask.CompletedTask));

    private static async Task<double> SemaphoreTasks(AsyncSemaphore semaphore, int tasks, int perTask)
    {
        await using (semaphore)
        {
            return await Scenarios.Parallel(tasks, perTask, async () =>
            {
                await semaphore.AcquireAsync();
                semaphore.Release();
            });
        }
    }

    private static Task<double> NitoSemaphoreTasks(Nito.AsyncEx.AsyncSemaphore semaphore, int tasks, int perTask) =>
        Scenarios.Parallel(tasks, perTask, async () =>
        {
            await semaphore.WaitAsync();
            semaphore.Release();
        });

    /// <summary>A thousand waiters on a fresh event, one set; measured in waiters woken per second.</summary>
    private static Task<double> EventFanOut<TEvent>(Func<TEvent> create, Func<TEvent, Task> wait, Action<TEvent> set,
                                                    Func<TEvent, ValueTask> dispose, int sets)
    {
        const int Waiters = 1_000;
        return Runner.OpsPerSecond((long)sets * Waiters, async () =>
        {
            var waits = new Task[Waiters];
            for (var s = 0; s < sets; s++)
            {
                var @event = create();
                for (var i = 0; i < Waiters; i++)
                {
                    waits[i] = wait(@event);
                }

                set(@event);
                await Task.WhenAll(waits);
                await dispose(@event);
            }
        });
    }

    /// <summary>An actor that takes a slot, gives it back at once, and repeats.</summary>
    private sealed class LimiterCaller : ReceiveActor
    {
        private readonly IActorRef _gatekeeper;
        private readonly int _rounds;
        private readonly TaskCompletionSource _done;
        private readonly bool _lean;
        private long _request;

        public LimiterCaller(IActorRef gatekeeper, int rounds, TaskCompletionSource done, bool lean)
        {
            _gatekeeper = gatekeeper;
            _rounds = rounds;
            _done = done;
            _lean = lean;
            Receive<Go>(_ => _gatekeeper.Tell(Next()));
            Receive<GatekeeperProtocol.Granted>(granted =>
            {
                if (granted.RequestId == _rounds)
                {
                    _gatekeeper.Tell(new GatekeeperProtocol.Release(granted.LeaseId));
                    _done.TrySetResult();
                }
                else if (_lean)
                {
                    _gatekeeper.Tell(new GatekeeperProtocol.ReleaseAndAcquire(granted.LeaseId, Next()));
                }
                else
                {
                    _gatekeeper.Tell(new GatekeeperProtocol.Release(granted.LeaseId));
                    _gatekeeper.Tell(Next());
                }
            });
            Receive<GatekeeperProtocol.Queued>(_ => { });
            Receive<GatekeeperProtocol.Rejected>(rejected => _done.TrySetException(new InvalidOperationException(rejected.Reason)));
        }

        private GatekeeperProtocol.Acquire Next() => new("bench-actor", ++_request) { ReplyQueued = !_lean };

        public sealed class Go
        {
            public static Go Instance { get; } = new();
        }
    }
}
