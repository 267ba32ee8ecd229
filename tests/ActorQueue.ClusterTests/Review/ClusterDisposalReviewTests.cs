using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 181) of the cluster facades' disposal (<see cref="FacadeDisposal"/>) after helper 178: a resize racing
/// the dispose, the stop sent once, and every dispose completing. Each FINDING failed before its fix; the rest pin what held.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterDisposalReviewTests : OneNodeClusterTest
{
    /// <summary>Rounds of the barrier race (a fake agent: cheap).</summary>
    private const int Rounds = 200;

    /// <summary>Resizing threads per round.</summary>
    private const int Resizers = 6;

    /// <summary>
    /// FINDING 1. A partitioned facade's resize returned, and the dispose that followed it stopped the agents' parent with
    /// the resize in its mailbox ahead of the stop, as <see cref="FacadeDisposal"/> promises: the parent routed it to the
    /// partition's agent and then stopped itself, which stops its children by a system message, taken before the agent's
    /// ordinary messages: the resize was left in the stopped agent's mailbox, a dead letter, neither applied nor failed.
    /// Expected: a resize that returned before the dispose reaches the partition's gatekeeper. FAILED before the fix: the
    /// partition still ran at 2 (the wait for 5 timed out), for both partitioned facades.
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_partitioned_resize_returned_before_the_dispose_reaches_the_gatekeeper(string kind)
    {
        var name = $"h181-resize-then-dispose-{kind}";
        var (resize, dispose, status) = Facade(kind, name);
        await status("warm"); // the parent is up, the partition "warm" live: both routes of a resize

        resize("warm");
        resize("cold");
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);

        var (_, again, statusAgain) = Facade(kind, name); // the name is free again: a new agent asks the same gatekeepers
        foreach (var key in new[] { "warm", "cold" })
        {
            await Poll.ValueAsync(() => statusAgain(key), status => status.MaxRunning == 5, ClusterNodes.StepTimeout); // failed: it stayed at 2
        }

        await again().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// Held: many resizes on dedicated threads, released at a barrier with two concurrent disposals and a synchronous
    /// one, over a fake agent. Every round the stop is sent exactly once, last; every resize that returned is ahead of it;
    /// every other one threw <see cref="ObjectDisposedException"/>; every disposal completes with the stop.
    /// </summary>
    [Fact]
    public void A_dispose_racing_many_resizes_sends_one_stop_behind_every_resize_that_returned()
    {
        for (var round = 0; round < Rounds; round++)
        {
            var agent = new RecordingAgentRef(((ExtendedActorSystem)Node).Provider);
            var disposal = new FacadeDisposal(agent);
            var freed = 0;
            var returned = new int[Resizers];
            var stops = new Task[2];
            using var barrier = new Barrier(Resizers + 3);
            var threads = new List<Thread>();
            for (var i = 0; i < Resizers; i++)
            {
                var index = i;
                threads.Add(new Thread(() =>
                {
                    barrier.SignalAndWait();
                    try
                    {
                        disposal.Send(this, new ResizeLimiter(index + 1, null));
                        returned[index] = 1;
                    }
                    catch (ObjectDisposedException)
                    {
                        returned[index] = -1;
                    }
                }));
            }

            for (var i = 0; i < 3; i++)
            {
                var index = i;
                threads.Add(new Thread(() =>
                {
                    barrier.SignalAndWait();
                    var stopped = disposal.Stop(this, _ => Interlocked.Increment(ref freed));
                    if (index < 2)
                    {
                        stops[index] = stopped; // the third is Dispose: it does not wait
                    }
                }));
            }

            threads.ForEach(thread => thread.Start());
            threads.ForEach(thread => Assert.True(thread.Join(ClusterNodes.StepTimeout)));

            var received = agent.Received.ToArray();
            Assert.Equal(1, freed);
            Assert.Single(received, message => message is DisposeGatekeeper);
            Assert.IsType<DisposeGatekeeper>(received[^1]);
            Assert.DoesNotContain(0, returned);
            Assert.Equal(returned.Count(outcome => outcome == 1), received.Length - 1);
            Assert.All(stops, stopped => Assert.True(stopped.IsCompletedSuccessfully));
            Assert.Throws<ObjectDisposedException>(() => disposal.Send(this, new ResizeLimiter(1, null)));
        }
    }

    /// <summary>
    /// Held: a resize whose send throws (the agent ref throws) after the dispose began, while it was on its way, still
    /// leaves: the stop is sent once, behind it, and the dispose completes.
    /// </summary>
    [Fact]
    public void A_resize_whose_send_throws_while_the_dispose_waits_for_it_still_lets_the_stop_go()
    {
        var agent = new RecordingAgentRef(((ExtendedActorSystem)Node).Provider) { HoldAndThrow = true };
        var disposal = new FacadeDisposal(agent);
        Exception? thrown = null;
        var resizer = new Thread(() => thrown = Record.Exception(() => disposal.Send(this, new ResizeLimiter(3, null))));
        resizer.Start();
        Assert.True(agent.Holding.Wait(ClusterNodes.StepTimeout));

        var stopped = disposal.Stop(this, _ => { });
        Assert.False(stopped.IsCompleted); // the stop waits for the resize on its way
        Assert.Empty(agent.Received);
        agent.Release.Set();
        Assert.True(resizer.Join(ClusterNodes.StepTimeout));

        Assert.IsType<InvalidOperationException>(thrown);
        Assert.IsType<DisposeGatekeeper>(Assert.Single(agent.Received));
        Assert.True(stopped.IsCompletedSuccessfully);
        Assert.Same(stopped, disposal.Stop(this, _ => throw new InvalidOperationException("freed twice")));
    }

    /// <summary>
    /// Held: both partitioned facades' disposals (a repeated one too) complete on a node whose system has terminated or
    /// is terminating, a partition live and a resize just sent (the guard only turns a hang into a failure).
    /// </summary>
    [Theory]
    [InlineData("partitioned", true)]
    [InlineData("partitioned", false)]
    [InlineData("partitioned-model-api", true)]
    [InlineData("partitioned-model-api", false)]
    public async Task A_partitioned_dispose_completes_with_the_system_terminated_or_terminating(string kind, bool terminated)
    {
        var (resize, dispose, status) = Facade(kind, $"h181-terminated-{kind}");
        await status("key");
        resize("key");
        var terminating = Node.Terminate();
        if (terminated)
        {
            await terminating.WaitAsync(ClusterNodes.StepTimeout);
        }

        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await terminating.WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// Held: a settle reads back whole with every field at its default (no sequence, charger unknown: 0) and at its
    /// extremes; the reader refuses none of them (an unknown charger gives nothing back at any incarnation, epochs never 0;
    /// the highest charger is the highest epoch an incarnation draws: one above it is refused, SettleChargedByRound39Tests).
    /// </summary>
    [Fact]
    public void A_settle_reads_back_whole_with_defaults_and_extremes()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Node);
        RemoteSettle[] settles =
        [
            new(0, 0, 1, 0, 0),
            new(long.MaxValue, long.MaxValue, int.MaxValue, long.MaxValue, long.MaxValue) { Sequence = long.MaxValue, ChargedBy = Incarnation.HighestEpoch },
            new(1, 2, 1, 10, 0) { Sequence = 1, ChargedBy = 0 },
        ];
        foreach (var settle in settles)
        {
            Assert.Equal(settle, serializer.FromBinary(serializer.ToBinary(settle), serializer.Manifest(settle)));
        }
    }

    /// <summary>
    /// Held: a call granted (and charged) by incarnation 1 is held across a hand-over; the agent announces the lease to
    /// incarnation 2 (here a probe), and its settle there still names incarnation 1 as the charger, not the incarnation
    /// that adopted the lease: incarnation 2 gives nothing back.
    /// </summary>
    [Fact]
    public async Task A_lease_held_across_a_hand_over_is_settled_naming_the_incarnation_that_granted_it()
    {
        const string name = "h181-charged-across-hand-over";
        var rates = new ModelApiLimiterOptions(4, 100, 100, TimeSpan.FromHours(1));
        var nodeAgent = Kit.CreateTestProbe();
        var address = ActorQueueCluster.Get(Node).Cluster.SelfAddress;
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, nodeAgent.Ref));
        var first = Node.ActorOf(ClusterGatekeeperActor.Props(name, 4, null, QueueFullMode.RejectNewcomer, TimeSpan.Zero, TimeSpan.FromSeconds(30), rates),
            $"gatekeeper-{name}");
        var epoch1 = (await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch;
        first.Tell(new LimiterAnnounce(epoch1, address, [], [], []), nodeAgent);
        var setup = new LimiterAgentSetup(name, new ClusterLimit(4, null, null, QueueFullMode.RejectNewcomer), Kit.CreateTestProbe().Ref, address,
            new LimiterCounts(), new LimiterCounts(), new LimitMirror(4, null), HelloInterval: TimeSpan.FromHours(1)) { Rates = rates };
        var agent = Node.ActorOf(LimiterAgentActor.Props(setup));
        agent.Tell(new RecoverLimiter(name, epoch1), first);
        var caller = Kit.CreateTestProbe();
        agent.Tell(new GatekeeperProtocol.Acquire("caller", 1) { Tokens = 100 }, caller);
        var lease = (await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).LeaseId;

        var second = Kit.CreateTestProbe(); // incarnation 2, after the hand-over
        const long epoch2 = 4242;
        agent.Tell(new RecoverLimiter(name, epoch2), second);
        var announce = await second.ExpectMsgAsync<LimiterAnnounce>(ClusterNodes.StepTimeout);
        Assert.Equal([lease], announce.Held);
        agent.Tell(new GatekeeperProtocol.Settle(lease, 0), caller);

        var settle = await second.FishForMessageAsync<RemoteSettle>(_ => true, ClusterNodes.StepTimeout);
        Assert.Equal((epoch2, lease, epoch1), (settle.Epoch, settle.RequestId, settle.ChargedBy));
    }

    /// <summary>A partitioned facade of <paramref name="kind"/> at 2 per partition: its resize to 5, its dispose and a partition's status.</summary>
    private (Action<string> Resize, Func<ValueTask> Dispose, Func<string, Task<ClusterLimiterStatus>> Status) Facade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        var idle = TimeSpan.FromMinutes(10);
        if (kind == "partitioned")
        {
            var plain = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, idle);
            return (key => plain.Resize(key, maxRunning: 5), plain.DisposeAsync, key => plain.GetStatusAsync(key, ClusterNodes.StepTimeout));
        }

        var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), idle);
        return (key => model.Resize(key, maxConcurrent: 5), model.DisposeAsync, key => model.GetStatusAsync(key, ClusterNodes.StepTimeout));
    }

    /// <summary>An agent ref that records what reaches it in order, completes a stop as an agent would, and can hold a resize's sender and then throw.</summary>
    private sealed class RecordingAgentRef(IActorRefProvider provider) : MinimalActorRef
    {
        /// <summary>What reached the mailbox, in order.</summary>
        public System.Collections.Concurrent.ConcurrentQueue<object> Received { get; } = new();

        /// <summary>Whether a resize's sender is held until <see cref="Release"/>, then thrown at.</summary>
        public bool HoldAndThrow { get; init; }

        /// <summary>Set as a held resize's sender reaches the ref.</summary>
        public ManualResetEventSlim Holding { get; } = new();

        /// <summary>Lets a held resize's sender go on (to its exception).</summary>
        public ManualResetEventSlim Release { get; } = new();

        /// <inheritdoc />
        public override ActorPath Path { get; } = new RootActorPath(Address.AllSystems) / "recording-agent";

        /// <inheritdoc />
        public override IActorRefProvider Provider => provider;

        /// <inheritdoc />
        protected override void TellInternal(object message, IActorRef sender)
        {
            if (HoldAndThrow && message is ResizeLimiter)
            {
                Holding.Set();
                Release.Wait(ClusterNodes.StepTimeout);
                throw new InvalidOperationException("the send failed");
            }

            Received.Enqueue(message);
            (message as DisposeGatekeeper)?.Stopped.TrySetResult();
        }
    }
}
