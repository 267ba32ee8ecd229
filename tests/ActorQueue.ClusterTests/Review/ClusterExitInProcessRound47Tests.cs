using ActorQueue.Cli.Commands;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cli;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 47, in process (so in the cluster collection, alone): the session's giving up its leave ends Akka's own
/// cluster-exiting wait (<c>ClusterExitRound47Tests</c> shows the same with actorqueue processes).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterExitInProcessRound47Tests
{
    /// <summary>
    /// In process, on the test's clock: the session's leave has waited its whole bound while Akka's shutdown (started
    /// meanwhile, as a failed TLS handshake starts it) waits in its cluster-exiting phase, whose own bound is still
    /// ahead. The session's giving up downs the node there, so that phase ends now rather than at its own bound or timeout.
    /// Mutant tried: the session not telling the phase that it gave up (no <c>_leaveGivenUp</c>; the phase's own bound
    /// only, a clock that stops short of it): the node was never downed ("the node was downed when its session gave its
    /// leave up"), its shutdown went on only after the phase's timeout.
    /// </summary>
    [Fact]
    public async Task A_leave_the_session_gave_up_ends_akkas_exiting_wait()
    {
        var within = TimeSpan.FromSeconds(60);
        var listen = $"127.0.0.1:{TestPorts.Free()}";
        using var stop = new CancellationTokenSource();
        var starting = ClusterSession.StartCoordinatorAsync(ClusterSession.Coordinator(listen, allowRemote: false) with { InsecureLoopback = true },
            minNodes: 2, capacity: 16, TextWriter.Null, quiet: true, stop.Token);
        var worker = ClusterSession.Worker(listen, "", allowRemote: false) with { InsecureLoopback = true };
        var crashed = ActorQueueClusterRuntime.Create(worker, ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-actor-system-terminate = off"));
        var clock = new FakeTimeProvider();
        var leaving = ClusterSession.StartNode(worker, TextWriter.Null, clock);
        await using var coordinator = await starting.WaitAsync(within);
        Assert.NotNull(coordinator);
        var cluster = leaving.Cluster.Cluster;
        await Poll.UntilAsync(() => cluster.State.Members.Count(member => member.Status == MemberStatus.Up) == 3, within, "the node sees three members Up", CliScratch.Tick);
        var watching = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        leaving.System.ActorOf(Props.Create(() => new MembershipLog(watching, events)));
        await watching.Task.WaitAsync(within); // subscribed before anything can down the node
        await crashed.Terminate().WaitAsync(within); // a crash: it never leaves, so the membership cannot converge

        var disposing = leaving.DisposeAsync().AsTask();
        await Poll.UntilAsync(() => cluster.SelfMember.Status == MemberStatus.Leaving, within, "the node is leaving", CliScratch.Tick);
        clock.Advance(ClusterSession.LeaveBound / 2);
        _ = CoordinatedShutdown.Get(leaving.System).Run(CoordinatedShutdown.UnknownReason.Instance); // as Akka's transport does
        clock.Advance(ClusterSession.LeaveBound / 2); // the session's bound; the phase's own one is half a bound ahead
        await disposing.WaitAsync(within);

        // The session's own word, neither sampled nor heard: the node is down only for the moment its exiting phase takes
        // to end (a status sampled every 20 ms missed it once in a CI run), and its MemberDowned event, to an actor of a
        // system that is terminating, was not heard once in 22 runs under load. The events stay for a failure's message.
        Assert.True(leaving.DownedItself, "the node was downed when its session gave its leave up; events: " + string.Join(" | ", events));
    }

    /// <summary>Writes every membership and reachability event its node hears into <c>events</c>, for a failure's message.</summary>
    private sealed class MembershipLog : ReceiveActor
    {
        public MembershipLog(TaskCompletionSource watching, System.Collections.Concurrent.ConcurrentQueue<string> events)
        {
            Receive<ClusterEvent.CurrentClusterState>(_ => watching.TrySetResult());
            Receive<ClusterEvent.IMemberEvent>(message => events.Enqueue($"{DateTime.UtcNow:ss.fff} {message.GetType().Name} {message.Member}"));
            Receive<ClusterEvent.IReachabilityEvent>(message => events.Enqueue($"{DateTime.UtcNow:ss.fff} {message}"));
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
    }
}
