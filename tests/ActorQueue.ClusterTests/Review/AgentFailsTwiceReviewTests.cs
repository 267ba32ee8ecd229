using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.Dispatch;
using static ActorQueue.Tests.Review.AgentCarryRound2ReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A cluster limiter's node agent that fails twice in a row on the same message before its handler runs (helper 157):
/// the first instance hands the message to the next one, which fails on it again. Before, the message was dropped
/// with a log line: a facade caller (plain or partitioned), an actor's acquire (alone or after its release) and a
/// status ask were never answered, a release left its lease counted for ever and a resize was lost. Now the request is
/// failed naming the limiter and the cause, the status ask is failed, a release is applied by the failing instance's
/// stop (helper 163; sent to the agent once more before) and a resize is booked; the tests end with the limit exactly its size. Made deterministic by breaking the agent's books by
/// reflection in each instance, the next one held (suspended) as it is made (<see cref="FailTwiceOnAsync"/>).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentFailsTwiceReviewTests
{
    /// <summary>How long each step may take.</summary>
    private static TimeSpan Step => ClusterNodes.StepTimeout;

    /// <summary>
    /// A facade caller's request is the message both instances fail on: the caller is failed with the cause, naming the
    /// limiter, the node's loan lends again (its announcement ended), and the limit is exactly 2.
    /// FAILED before: the caller's task never completed (TimeoutException after the step timeout).
    /// </summary>
    [Fact]
    public async Task A_facade_request_both_instances_fail_on_is_failed_with_the_cause()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-facade");

        Task<ConcurrencyLease> caller = null!;
        await FailTwiceOnAsync(a.Agent, () => caller = a.AcquireAsync(source: "failed twice on").AsTask(), message => message is ClusterAcquireRequest);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => caller.WaitAsync(Step));
        Assert.Contains("'twice-facade' failed twice before handling this request", error.Message);
        Assert.IsType<NullReferenceException>(error.InnerException);
        using (await Poll.ValueAsync(() => Task.FromResult(a.TryClaim(1, "attempt")), lease => lease is not null, Step)) // the loan lends again
        {
        }

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// As above while a lease claimed from the node's block is out: failing the request must not touch the loan's count of
    /// it (the instance that fails has not reclaimed the loan), so the claimed lease still holds its permit (one more
    /// caller on A is granted, the next waits), is freed once when released, and the limit is exactly 2.
    /// </summary>
    [Fact]
    public async Task A_facade_request_both_instances_fail_on_leaves_a_claimed_lease_counted()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-claimed");
        var claimed = (await Poll.ValueAsync(() => Task.FromResult(a.TryClaim(1, "claimed")), lease => lease is not null, Step))!;

        Task<ConcurrencyLease> caller = null!;
        await FailTwiceOnAsync(a.Agent, () => caller = a.AcquireAsync(source: "failed twice on").AsTask(), message => message is ClusterAcquireRequest);
        await Assert.ThrowsAsync<InvalidOperationException>(() => caller.WaitAsync(Step));

        await using (var second = await a.AcquireAsync(source: "second").AsTask().WaitAsync(Step))
        {
            var third = a.AcquireAsync(source: "third").AsTask();
            var seen = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.Waiting == 1 || third.IsCompleted, Step))!;
            Assert.False(third.IsCompleted, "the claimed lease's permit was granted again while it was held");
            Assert.Equal(2, seen.Running);
            claimed.Dispose();
            (await third.WaitAsync(Step)).Dispose();
        }

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// The same for a partition's agent (restarted by the partitions' parent, its routed count compared by the parent's
    /// idle check): the caller is failed naming the limiter and its key, a lease held across the failures frees its
    /// permit once, the key's limit is exactly 2, and the agent still idles away.
    /// FAILED before: the caller's task never completed (TimeoutException after the step timeout).
    /// </summary>
    [Fact]
    public async Task A_partition_request_both_instances_fail_on_is_failed_and_the_agent_idles_away()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var idle = TimeSpan.FromSeconds(1);
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("twice-partition", maxRunning: 2, maxQueued: null, idle);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("twice-partition", maxRunning: 2, maxQueued: null, idle);
        var held = await a.AcquireAsync("tenant", source: "held").AsTask().WaitAsync(Step); // the agent lives on meanwhile
        var agent = await cluster.Nodes[1].ActorSelection("/system/actorqueue-partitions-*-twice-partition/*").ResolveOne(Step);

        Task<ConcurrencyLease> caller = null!;
        await FailTwiceOnAsync(agent, () => caller = a.AcquireAsync("tenant", source: "failed twice on").AsTask(), message => message is ClusterAcquireRequest);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => caller.WaitAsync(Step));
        Assert.Contains("'twice-partition (partition tenant)'", error.Message);
        Assert.IsType<NullReferenceException>(error.InnerException);
        held.Dispose();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b, "tenant"), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(n => b.AcquireAsync("tenant", n, source: "on B").AsTask(), () => a.AcquireAsync("tenant", source: "on A").AsTask(),
            () => ClusterNodes.StatusAsync(b, "tenant"), 2);
        await Poll.UntilAsync(() => !a.Partitions.Live.ContainsKey("tenant"), Step, "the restarted partition agent idles away");
    }

    /// <summary>
    /// A local actor's acquire is the message both instances fail on: the actor is told it was rejected, with the cause,
    /// and nothing of it is counted (the limit is exactly 2). FAILED before: the actor was told nothing (ExpectMsg timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_acquire_both_instances_fail_on_is_answered_rejected()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-actor");
        var caller = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]).CreateTestProbe(); // the kit is not disposed: that would shut the node down

        await FailTwiceOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 7), caller.Ref), message => message is GatekeeperProtocol.Acquire);

        var rejected = await caller.ExpectMsgAsync<GatekeeperProtocol.Rejected>(Step);
        Assert.Equal(7, rejected.RequestId);
        Assert.Contains("'twice-actor'", rejected.Reason);
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A status ask is the message both instances fail on: it is failed with the cause at once.
    /// FAILED before: nothing answered it (AskTimeoutException after the ask's timeout).
    /// </summary>
    [Fact]
    public async Task A_status_ask_both_instances_fail_on_is_failed()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, _) = await LimitersAsync(cluster, "twice-status");

        Task<ClusterLimiterStatus> status = null!;
        await FailTwiceOnAsync(a.Agent, () => status = a.GetStatusAsync(Step), message => message is LimiterStatusAsk); // the facade's own ask (helper 193)

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => status);
        Assert.Contains("'twice-status'", error.Message);
        Assert.Equal(0, (await a.GetStatusAsync(Step)).Running);
    }

    /// <summary>
    /// Every shared status ask is one object (<see cref="GetLimiterStatus.Instance"/>, as the partitions' parent's rest probe
    /// sends it; a facade's is one per call since helper 193, so the agent is asked directly): one the agent fails on once is handed on
    /// and answered, and so is a later one, which is not taken for the first failing again (it was answered with the
    /// failure: the carry still named the object handed on before).
    /// </summary>
    [Fact]
    public async Task A_status_ask_after_one_handed_on_is_handed_on_too()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, _) = await LimitersAsync(cluster, "twice-status-again");
        for (var i = 0; i < 2; i++)
        {
            Task<ClusterLimiterStatus> status = null!;
            await FailOnAsync(a.Agent, () => status = a.Agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, Step), message => message is GetLimiterStatus, twice: false);
            Assert.Equal(2, (await status).MaxRunning);
        }
    }

    /// <summary>
    /// A facade lease's release is the message both instances fail on: the failing instance's stop applies it to the
    /// books (helper 163; sent to the agent once more before), so its permit is freed (B takes the whole limit) once, and
    /// the limit is exactly 2.
    /// FAILED before: the release was dropped and the lease, carried, counted for ever (B's acquire of 2 timed out).
    /// </summary>
    [Fact]
    public async Task A_release_both_instances_fail_on_frees_its_permit_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-release");
        var lease = await a.AcquireAsync(source: "released").AsTask().WaitAsync(Step);

        await FailTwiceOnAsync(a.Agent, lease.Dispose, message => message is ReleaseAgentLease);

        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A local actor's release-and-acquire is the message both instances fail on: its acquire is rejected with the cause,
    /// its release goes on, so the lease it held is freed once, and the limit is exactly 2.
    /// FAILED before: the actor was told nothing (ExpectMsg timed out) and its lease stayed counted.
    /// </summary>
    [Fact]
    public async Task An_actor_release_and_acquire_both_instances_fail_on_releases_and_is_answered_rejected()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-swap");
        var caller = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]).CreateTestProbe(); // the kit is not disposed: that would shut the node down
        a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), caller.Ref);
        var held = await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        await FailTwiceOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.ReleaseAndAcquire(held.LeaseId, new GatekeeperProtocol.Acquire("actor", 2)), caller.Ref),
            message => message is GatekeeperProtocol.ReleaseAndAcquire);

        var rejected = await caller.ExpectMsgAsync<GatekeeperProtocol.Rejected>(Step);
        Assert.Equal(2, rejected.RequestId);
        Assert.Contains("'twice-swap'", rejected.Reason);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A resize is the message both instances fail on: it is kept, and sent with the next instance's announcement, so
    /// the limit becomes 3 on every node, exactly. FAILED before: the resize was dropped (the limit stayed 2: polling timed out).
    /// </summary>
    [Fact]
    public async Task A_resize_both_instances_fail_on_is_applied()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "twice-resize");
        (await b.AcquireAsync(source: "B in touch").AsTask().WaitAsync(Step)).Dispose(); // so B hears the new limit

        await FailTwiceOnAsync(a.Agent, () => a.Resize(maxRunning: 3), message => message is ResizeLimiter);

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.MaxRunning == 3, Step);
        await Poll.UntilAsync(() => a.MaxRunning == 3 && b.MaxRunning == 3, Step, "both nodes heard the new limit"); // B checks its callers' weights against it
        await AssertLimitIsExactlyAsync(a, b, 3);
    }

    /// <summary>
    /// Has <paramref name="agent"/> fail on the message <paramref name="send"/> sends (picked by <paramref name="isTarget"/>)
    /// before its handler, in two instances in a row: held in its suspended mailbox, first; its books broken; taken; and
    /// the next instance, suspended as it is made (<see cref="SuspendingStash"/>) with the message handed to it in front,
    /// broken in turn before it takes it. Returns once the next instance was let go; the instance after it is sound.
    /// </summary>
    private static Task FailTwiceOnAsync(IActorRef agent, Action send, Func<object, bool> isTarget) => FailOnAsync(agent, send, isTarget, twice: true);

    /// <summary>As <see cref="FailTwiceOnAsync"/>, or only in the first instance unless <paramref name="twice"/>.</summary>
    private static async Task FailOnAsync(IActorRef agent, Action send, Func<object, bool> isTarget, bool twice)
    {
        var cell = (ActorCell)((ActorRefWithCell)agent).Underlying;
        await Poll.UntilAsync(() => cell.Mailbox!.MessageQueue.Count == 0, Step, "the agent's mailbox is empty");
        cell.Suspend();
        send();
        await Poll.UntilAsync(() => PutFirst(cell, isTarget), Step, "the message is in the agent's mailbox, first"); // a timer's tick may have come before it

        var first = ActorOf(cell);
        var stash = new SuspendingStash(((IActorStash)first).Stash, cell, twice);
        ((IActorStash)first).Stash = stash;
        BreakBooks(first);
        cell.Resume(null!);
        if (twice)
        {
            await Poll.UntilAsync(() => !ReferenceEquals(ActorOf(cell), first) && IsSuspended(cell) && !HasSystemMessages(cell), Step,
                "the next instance is made and held");
            BreakBooks(ActorOf(cell));
            cell.Resume(null!);
        }

        await agent.Ask<ActorIdentity>(new Identify(null), Step); // the instance after it answers
        Assert.True(isTarget(Assert.Single(stash.Handed).Message)); // the first instance failed on it and handed it on
    }

    /// <summary>The agent's block settings, gone: its next message fails in its loan's reclaim, before its handler.</summary>
    internal static void BreakBooks(LimiterAgentActor agent) =>
        typeof(LimiterAgentActor).GetField("_blocks", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(agent, null);

    internal static LimiterAgentActor ActorOf(ActorCell cell) =>
        (LimiterAgentActor)typeof(ActorCell).GetProperty("Actor", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(cell)!;

    internal static bool IsSuspended(ActorCell cell) =>
        (bool)typeof(Mailbox).GetMethod("IsSuspended", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.Invoke(cell.Mailbox, null)!;

    internal static bool HasSystemMessages(ActorCell cell) =>
        (bool)typeof(Mailbox).GetProperty("HasSystemMessages", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(cell.Mailbox)!;

    /// <summary>Puts the picked message in front of what else a suspended mailbox holds; whether it holds it.</summary>
    internal static bool PutFirst(ActorCell cell, Func<object, bool> isTarget)
    {
        var queued = TakeAll(cell);
        foreach (var envelope in queued.Where(envelope => isTarget(envelope.Message)).Concat(queued.Where(envelope => !isTarget(envelope.Message))))
        {
            cell.Mailbox!.MessageQueue.Enqueue(cell.Self, envelope);
        }

        return queued.Any(envelope => isTarget(envelope.Message));
    }

    private static List<Envelope> TakeAll(ActorCell cell)
    {
        var taken = new List<Envelope>();
        while (cell.Mailbox!.MessageQueue.TryDequeue(out var envelope))
        {
            taken.Add(envelope);
        }

        return taken;
    }

    /// <summary>Limiter <paramref name="name"/> (a limit of 2) on node A (the second node) and B, with A's agent in touch with the gatekeeper.</summary>
    internal static async Task<(ClusterConcurrencyLimiter A, ClusterConcurrencyLimiter B)> LimitersAsync(ClusterNodes cluster, string name)
    {
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter(name, maxRunning: 2);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter(name, maxRunning: 2); // made first: the gatekeeper's roll call reaches it
        (await a.AcquireAsync(source: "first contact").AsTask().WaitAsync(Step)).Dispose();
        return (a, b);
    }

    /// <summary>
    /// The failing instance's stash: what it hands its next instance (<see cref="Handed"/>) goes to the real stash, and as
    /// Akka puts the stash back in the mailbox to replace the instance, the agent is suspended too if
    /// <paramref name="suspending"/>, so that it takes no message before the test has seen (and broken) its next instance.
    /// </summary>
    internal sealed class SuspendingStash(IStash stash, ActorCell cell, bool suspending) : IStash
    {
        public List<Envelope> Handed { get; } = [];

        public int Count => stash.Count;

        public bool IsEmpty => stash.IsEmpty;

        public bool NonEmpty => stash.NonEmpty;

        public bool IsFull => stash.IsFull;

        public int Capacity => stash.Capacity;

        public void Stash() => stash.Stash();

        public void Unstash() => stash.Unstash();

        public void UnstashAll()
        {
            stash.UnstashAll();
            if (suspending)
            {
                cell.Suspend(); // a system message: taken after the restart, before any message of the mailbox
            }
        }

        public void UnstashAll(Func<Envelope, bool> predicate) => stash.UnstashAll(predicate);

        public IEnumerable<Envelope> ClearStash() => stash.ClearStash();

        public void Prepend(IEnumerable<Envelope> envelopes)
        {
            var given = envelopes.ToList();
            Handed.AddRange(given);
            stash.Prepend(given);
        }
    }
}
