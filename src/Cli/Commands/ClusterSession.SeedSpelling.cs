using ActorQueue.Cluster;
using Akka.Actor;
using Akka.Remote;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// A worker whose <c>--seed</c> names its coordinator otherwise than the coordinator's <c>--listen</c> (<c>localhost</c>
/// for <c>127.0.0.1</c>, a host name for its IP address): Akka addresses a node by the host it listens as and drops what
/// arrives for any other name of it ("dropping message for non-local recipient", logged on the coordinator only), so the
/// node's joins reached the coordinator, were dropped, and the node waited for ever, warning "Couldn't join seed nodes"
/// every 5 s. Neither side can learn the other's spelling from Akka (the answer that carries it is the one dropped), and
/// Akka has no aliases for an address, so the node detects it: its seed's address is associated (something listens
/// there, speaks Akka and passed the TLS handshake) and yet lets it join within <see cref="SeedSilence"/>.
/// </summary>
internal sealed partial class ClusterSession
{
    /// <summary>
    /// How long a worker associated with its seed waits to be let in before it says the seed drops its joins. A coordinator
    /// that names itself as the seed does answers the first join it receives (within 5 s of listening: see
    /// <see cref="Remoting"/>); this is four of Akka's join attempts (<c>seed-node-timeout</c>, 5 s).
    /// </summary>
    public static readonly TimeSpan SeedSilence = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Completes when this worker has been associated with its seed for <see cref="SeedSilence"/> without becoming a member
    /// (a disassociation restarts the wait, so a seed that is not up yet, which refuses the connection, is waited for
    /// as long as it takes); never completes otherwise (nor on a coordinator). Its continuations run off the watching actor's thread.
    /// </summary>
    public Task SeedDropsJoins { get; private set; } = new TaskCompletionSource().Task;

    /// <summary>
    /// Starts the worker node of <paramref name="node"/> and joins its seeds once <see cref="SeedDropsJoins"/> watches
    /// them: with the seeds in its configuration, the node associated with a seed that was up before an actor could
    /// subscribe to the association's event.
    /// </summary>
    private static ClusterSession StartWorker(ClusterNodeOptions node, TimeProvider clock)
    {
        node.Validate(); // the seeds' rules too, before the node starts without them
        var session = new ClusterSession(ActorQueueClusterRuntime.Create(node with { SeedNodes = [] }, CliConfig)) { Clock = clock };
        if (node.SeedNodes.Count == 0)
        {
            return session; // joined by its caller, if at all
        }

        var scheme = node.InsecureLoopback ? "akka.tcp" : "akka.ssl.tcp";
        var seeds = node.SeedNodes.Select(seed => HostPort(seed, "--seed")).Select(seed => Address.Parse($"{scheme}://{session.System.Name}@{seed.Host}:{seed.Port}")).ToList();
        var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = session.System.ActorOf(Props.Create(() => new SeedWatch(seeds[0], () => session.IsMember, dropped)), "actorqueue-seed-watch");
        // Subscribed here, synchronously, before the join: the actor's PreStart could run after the association.
        session.System.EventStream.Subscribe(watch, typeof(AssociatedEvent));
        session.System.EventStream.Subscribe(watch, typeof(DisassociatedEvent));
        session.SeedDropsJoins = dropped.Task;
        session.Cluster.Cluster.JoinSeedNodes(seeds);
        return session;
    }

    /// <summary>One line for a worker whose seed <paramref name="seed"/> (as typed) drops its joins (<see cref="SeedDropsJoins"/>).</summary>
    public static string SeedDropsJoinsLine(string seed) =>
        $"actorqueue node: --seed {seed} answers, but did not let this node join within {SeedSilence.TotalSeconds:0} s: a coordinator takes a join only when "
        + "--seed spells its address exactly as its --listen (127.0.0.1 and localhost, or a host name and its IP address, are different to it) and drops the rest; "
        + "give --seed as the coordinator's line 'actorqueue node --seed HOST:PORT' shows it (exiting: the coordinator's address does not change while it runs)";

    /// <summary>Watches the association with <see cref="_seed"/> and completes <see cref="_dropped"/> as <see cref="SeedDropsJoins"/> says.</summary>
    private sealed class SeedWatch : ReceiveActor, IWithTimers
    {
        private readonly Address _seed;

        private readonly Func<bool> _isMember;

        private readonly TaskCompletionSource _dropped;

        public SeedWatch(Address seed, Func<bool> isMember, TaskCompletionSource dropped)
        {
            (_seed, _isMember, _dropped) = (seed, isMember, dropped);
            Receive<AssociatedEvent>(e => e.RemoteAddress.Equals(_seed) && !Timers.IsTimerActive(Silence), _ => Timers.StartSingleTimer(Silence, Silence, SeedSilence));
            Receive<DisassociatedEvent>(e => e.RemoteAddress.Equals(_seed), _ => Timers.Cancel(Silence));
            Receive<string>(tick => tick == Silence, _ =>
            {
                if (!_isMember())
                {
                    _dropped.TrySetResult();
                }

                Context.Stop(Self);
            });
            ReceiveAny(_ => { });
        }

        private const string Silence = "silence";

        public ITimerScheduler Timers { get; set; } = null!;

        protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
    }
}
