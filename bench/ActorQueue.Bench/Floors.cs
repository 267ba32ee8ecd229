using Akka.Actor;

namespace ActorQueue.Bench;

/// <summary>
/// The floors the contended scenarios are measured against (issue 21: "a remaining gap explained with a measured floor"):
/// the cheapest limiter that still sends one message per acquire and one per release. A bare actor keeps a count of free
/// permits and a FIFO queue of waiters and does nothing else — no priorities, timeouts, cancellation, telemetry,
/// counts, death-watch or validation. Whatever ActorQueue does beyond that is its own cost; what the bare actor costs is
/// the cost of the message-based design on this machine.
/// </summary>
internal static class Floors
{
    /// <summary>Subject name of a floor in a scenario's table.</summary>
    public const string Bare = "bare-actor-floor";

    /// <summary>Subject name of the cluster floor that also answers "queued" to a request that must wait.</summary>
    public const string BareQueued = "bare-floor-queued";

    /// <summary><paramref name="tasks"/> tasks each acquire a permit of <paramref name="permits"/> by message, yield, release by message.</summary>
    public static async Task<double> TaskCallers(ActorSystem system, int tasks, int perTask, int permits, bool yieldWhileHeld = true)
    {
        var floor = system.ActorOf(Props.Create(() => new BareLimiter(permits, false)));
        try
        {
            return await Scenarios.Parallel(tasks, perTask, async () =>
            {
                var granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                floor.Tell(granted);
                await granted.Task;
                if (yieldWhileHeld)
                {
                    await Task.Yield();
                }

                floor.Tell(BareLimiter.ReleaseOne);
            });
        }
        finally
        {
            floor.Tell(PoisonPill.Instance);
        }
    }

    /// <summary>
    /// <paramref name="actors"/> actors loop acquire → release against a bare limiter actor with the plain protocol's four
    /// messages per waiting cycle: acquire, a "queued" reply, a "granted" reply, release.
    /// </summary>
    public static async Task<double> ActorCallers(ActorSystem system, int actors, int perActor, int permits)
    {
        var floor = system.ActorOf(Props.Create(() => new BareLimiter(permits, true)));
        var done = Enumerable.Range(0, actors).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var callers = done.Select(d => system.ActorOf(Props.Create(() => new BareCaller(floor, perActor, d)))).ToArray();
        try
        {
            return await Runner.OpsPerSecond((long)actors * perActor, async () =>
            {
                foreach (var caller in callers)
                {
                    caller.Tell(BareCaller.Go);
                }

                await Task.WhenAll(done.Select(d => d.Task));
            });
        }
        finally
        {
            foreach (var actor in callers.Append(floor))
            {
                actor.Tell(PoisonPill.Instance);
            }
        }
    }

    /// <summary>
    /// The bare limiter on <paramref name="nodes"/>[0] and <paramref name="tasksPerNode"/> tasks on each node, each node's
    /// tasks going through one agent actor of their node, which talks to the limiter over remoting with primitive
    /// messages (a <see cref="long"/> acquire id out and back, an <see cref="int"/> release): the least a strictly FIFO
    /// cluster-wide limit costs when every acquire and release crosses to one place. <paramref name="replyQueued"/>: a
    /// request that must wait is also told so at once (a third message), as ActorQueue's gatekeeper tells a node's agent
    /// (the node's counts and its callers' queued signal come from that reply).
    /// </summary>
    public static async Task<double> ClusterCallers(IReadOnlyList<ActorSystem> nodes, int tasksPerNode, int perTask, int permits, string name, bool replyQueued = false)
    {
        var floor = nodes[0].ActorOf(Props.Create(() => new BareLimiter(permits, replyQueued)), name);
        var path = new RootActorPath(Akka.Cluster.Cluster.Get(nodes[0]).SelfAddress) / "user" / name;
        var agents = new List<IActorRef>();
        try
        {
            foreach (var node in nodes)
            {
                // The cluster runs in untrusted mode (no actor selection but Akka's and ActorQueue's own paths): the
                // reference is made from the path directly; messages to it still cross remoting.
                var remote = ((ExtendedActorSystem)node).Provider.ResolveActorRef(path);
                agents.Add(node.ActorOf(Props.Create(() => new BareAgent(remote))));
            }

            return await Runner.OpsPerSecond(3L * tasksPerNode * perTask, () => Task.WhenAll(agents.SelectMany(agent =>
                Enumerable.Range(0, tasksPerNode).Select(_ => Task.Run(async () =>
                {
                    for (var i = 0; i < perTask; i++)
                    {
                        var granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        agent.Tell(granted);
                        await granted.Task;
                        await Task.Yield();
                        agent.Tell(BareLimiter.ReleaseOne);
                    }
                })))));
        }
        finally
        {
            foreach (var actor in agents.Append(floor))
            {
                actor.Tell(PoisonPill.Instance);
            }
        }
    }

    /// <summary>
    /// A count of free permits and a FIFO queue of waiters: a task's completion, or an actor waiting under an id;
    /// <c>replyQueued</c>: an actor that must wait is told so at once, as the gatekeeper's plain protocol does.
    /// </summary>
    private sealed class BareLimiter : UntypedActor
    {
        public const int ReleaseOne = 1;

        private readonly Queue<(IActorRef? Caller, long Id, TaskCompletionSource? Task)> _waiters = new();
        private readonly bool _replyQueued;
        private int _free;

        public BareLimiter(int permits, bool replyQueued)
        {
            _free = permits;
            _replyQueued = replyQueued;
        }

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case TaskCompletionSource task when _free > 0:
                    _free--;
                    task.TrySetResult();
                    break;
                case TaskCompletionSource task:
                    _waiters.Enqueue((null, 0, task));
                    break;
                case long id when _free > 0:
                    _free--;
                    Sender.Tell(id);
                    break;
                case long id:
                    _waiters.Enqueue((Sender, id, null));
                    if (_replyQueued)
                    {
                        Sender.Tell(BareCaller.Queued);
                    }

                    break;
                case ReleaseOne when _waiters.TryDequeue(out var next):
                    if (next.Task is { } waiting)
                    {
                        waiting.TrySetResult();
                    }
                    else
                    {
                        next.Caller!.Tell(next.Id);
                    }

                    break;
                case ReleaseOne:
                    _free++;
                    break;
                default:
                    Unhandled(message);
                    break;
            }
        }
    }

    /// <summary>An actor caller of the bare limiter: acquire (id), ignore "queued", on "granted" release and acquire again.</summary>
    private sealed class BareCaller : UntypedActor
    {
        public const string Go = "go";
        public const string Queued = "queued";

        private readonly IActorRef _limiter;
        private readonly int _rounds;
        private readonly TaskCompletionSource _done;
        private long _request;

        public BareCaller(IActorRef limiter, int rounds, TaskCompletionSource done)
        {
            _limiter = limiter;
            _rounds = rounds;
            _done = done;
        }

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case Go:
                    _limiter.Tell(++_request);
                    break;
                case Queued:
                    break;
                case long granted:
                    _limiter.Tell(BareLimiter.ReleaseOne);
                    if (granted == _rounds)
                    {
                        _done.TrySetResult();
                    }
                    else
                    {
                        _limiter.Tell(++_request);
                    }

                    break;
                default:
                    Unhandled(message);
                    break;
            }
        }
    }

    /// <summary>A node's go-between for its tasks: acquires under an id over remoting and completes the task on the reply.</summary>
    private sealed class BareAgent : UntypedActor
    {
        private readonly IActorRef _limiter;
        private readonly Dictionary<long, TaskCompletionSource> _waiting = [];
        private long _next;

        public BareAgent(IActorRef limiter) => _limiter = limiter;

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case TaskCompletionSource task:
                    _waiting.Add(++_next, task);
                    _limiter.Tell(_next);
                    break;
                case long granted when _waiting.Remove(granted, out var task):
                    task.TrySetResult();
                    break;
                case BareCaller.Queued:
                    break;
                case BareLimiter.ReleaseOne:
                    _limiter.Tell(BareLimiter.ReleaseOne);
                    break;
                default:
                    Unhandled(message);
                    break;
            }
        }
    }
}
