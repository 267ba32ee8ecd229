using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using static ActorQueue.Tests.Review.AgentCarryRound2ReviewTests;
using Tools = ActorQueue.Tests.Review.AgentFailsTwiceReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second-wave review (helper 163) of helper 157's answer to a message two node-agent instances fail on before its
/// handler (<c>LimiterAgentActor.AnswerUnhandled</c>). Each test breaks the agent's books by reflection in every instance
/// that is to fail, each next instance held (suspended) as it is made, with helper 157's tools
/// (<see cref="AgentFailsTwiceReviewTests"/>). Before the fixes: an actor's
/// status ask, an actor's resize, a settle (a facade's or an actor's) and a dispose were dropped; an actor's
/// release-and-acquire reusing its released request id was never answered; a status ask answered after failing twice made a
/// later one that failed once fail too; and a release that failed again after it was sent once more was given up, its
/// lease counted for good. Each test ends with the limit exactly as configured.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentResendReviewTests
{
    /// <summary>How long each step may take.</summary>
    private static TimeSpan Step => ClusterNodes.StepTimeout;

    /// <summary>
    /// A status ask two instances fail on is failed; a later one (the same object: every shared status ask is
    /// <see cref="GetLimiterStatus.Instance"/>, asked of the agent directly, as the partitions' parent's rest probe does) that the agent
    /// fails on once is handed on and answered. FAILED before: the later one was failed too ("failed twice before handling
    /// this request"): the carry still named the ask answered as failing twice, so one failure looked like the second.
    /// </summary>
    [Fact]
    public async Task A_status_ask_failed_twice_leaves_a_later_one_that_fails_once_answered()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, _) = await LimitersAsync(cluster, "resend-status");
        Task<ClusterLimiterStatus> first = null!;
        await FailOnAsync(a.Agent, () => first = a.Agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, Step), message => message is GetLimiterStatus, times: 2);
        await Assert.ThrowsAsync<InvalidOperationException>(() => first);

        Task<ClusterLimiterStatus> second = null!;
        await FailOnAsync(a.Agent, () => second = a.Agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, Step), message => message is GetLimiterStatus, times: 1);
        Assert.Equal(2, (await second).MaxRunning);
    }

    /// <summary>
    /// A local actor's status ask (<see cref="GatekeeperProtocol.GetStatus"/>) two instances fail on is answered with the
    /// status, as its handler would. FAILED before: nothing answered it (ExpectMsg timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_status_ask_both_instances_fail_on_is_answered()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, _) = await LimitersAsync(cluster, "resend-actor-status");
        var caller = Probe(cluster);

        await FailOnAsync(a.Agent, () => a.Agent.Tell(GatekeeperProtocol.GetStatus.Instance, caller.Ref), message => message is GatekeeperProtocol.GetStatus, times: 2);

        var status = await caller.ExpectMsgAsync<GatekeeperProtocol.Status>(Step);
        Assert.Equal((2, "resend-actor-status"), (status.MaxRunning, status.Name));
    }

    /// <summary>
    /// An actor's release-and-acquire whose acquire reuses the released lease's request id (the protocol allows it) is
    /// the message both instances fail on: the acquire is rejected with the cause, the lease is freed once, and the limit
    /// is exactly 2. FAILED before: the acquire was looked up in the books, found the lease still held (its release had not
    /// run) and was taken for granted: the actor was told nothing (ExpectMsg timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_release_and_acquire_reusing_its_request_id_both_instances_fail_on_is_rejected()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "resend-swap-same-id");
        var caller = Probe(cluster);
        a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), caller.Ref);
        var held = await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        await FailOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.ReleaseAndAcquire(held.LeaseId, new GatekeeperProtocol.Acquire("actor", 1)), caller.Ref),
            message => message is GatekeeperProtocol.ReleaseAndAcquire, times: 2);

        var rejected = await caller.ExpectMsgAsync<GatekeeperProtocol.Rejected>(Step);
        Assert.Equal(1, rejected.RequestId);
        Assert.Contains("'resend-swap-same-id' failed twice", rejected.Reason);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A local actor's resize (<see cref="GatekeeperProtocol.Resize"/>) two instances fail on is kept and applied: the
    /// limit becomes 3 on every node, exactly. FAILED before: it was dropped (polling for MaxRunning = 3 timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_resize_both_instances_fail_on_is_applied()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "resend-actor-resize");
        (await b.AcquireAsync(source: "B in touch").AsTask().WaitAsync(Step)).Dispose(); // so B hears the new limit
        var caller = Probe(cluster);

        await FailOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.Resize(3, null), caller.Ref), message => message is GatekeeperProtocol.Resize, times: 2);

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.MaxRunning == 3, Step);
        await Poll.UntilAsync(() => a.MaxRunning == 3 && b.MaxRunning == 3, Step, "both nodes heard the new limit");
        await AssertLimitIsExactlyAsync(a, b, 3);
    }

    /// <summary>
    /// The limiter's dispose is the message both instances fail on: it completes (the agent stops), and the node's lease
    /// is freed with it (B takes the whole limit). FAILED before: the dispose was dropped and never completed (TimeoutException).
    /// </summary>
    [Fact]
    public async Task A_dispose_both_instances_fail_on_completes()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "resend-dispose");
        var held = await a.AcquireAsync(source: "held as A goes").AsTask().WaitAsync(Step);

        Task disposed = null!;
        await FailOnAsync(a.Agent, () => disposed = a.DisposeAsync().AsTask(), message => message is DisposeGatekeeper, times: 2);

        await disposed.WaitAsync(Step);
        Assert.True(((ActorCell)((ActorRefWithCell)a.Agent).Underlying).IsTerminated);
        (await b.AcquireAsync(2, source: "all").AsTask().WaitAsync(Step)).Dispose(); // A's lease went with its agent
        held.Dispose(); // to a stopped agent: nothing
    }

    /// <summary>
    /// A model-API lease's settle (300 tokens beyond its estimate) is the message both instances fail on: the excess is
    /// charged, so 1000 - 400 tokens are left once the lease is released. FAILED before: the settle was dropped, the
    /// rate kept 900 (polling for 600 timed out): the call used more tokens than the rate counted.
    /// </summary>
    [Fact]
    public async Task A_settle_both_instances_fail_on_charges_its_excess()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var a = ModelApiLimiters(cluster, "resend-settle");
        var lease = await a.AcquireAsync(100).AsTask().WaitAsync(Step);

        await FailOnAsync(a.Agent, () => lease.Settle(400), message => message is SettleTokens, times: 2);
        lease.Dispose();

        var status = await Poll.ValueAsync(() => a.GetStatusAsync(Step), s => s is { Running: 0, TokensAvailable: 600 }, Step);
        Assert.Equal(99, status.RequestsAvailable);
    }

    /// <summary>
    /// A local actor's settle is the message both instances fail on: the actor is told <see cref="GatekeeperProtocol.Settled"/>
    /// and the excess is charged. FAILED before: the settle was dropped; the actor was told nothing (ExpectMsg timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_settle_both_instances_fail_on_is_answered_and_charged()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var a = ModelApiLimiters(cluster, "resend-actor-settle");
        var caller = Probe(cluster);
        a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1) { Tokens = 100 }, caller.Ref);
        var granted = await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        await FailOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.Settle(granted.LeaseId, 400), caller.Ref), message => message is GatekeeperProtocol.Settle, times: 2);

        Assert.Equal(400, (await caller.ExpectMsgAsync<GatekeeperProtocol.Settled>(Step)).ActualTokens);
        a.Agent.Tell(new GatekeeperProtocol.Release(granted.LeaseId), caller.Ref);
        await Poll.ValueAsync(() => a.GetStatusAsync(Step), s => s is { Running: 0, TokensAvailable: 600 }, Step);
    }

    /// <summary>
    /// A lease's release that every instance fails on (four in a row: a defect that stays) frees its permit once: a facade
    /// lease's, a lease claimed from the node's block (its release sent to the agent: the loan was shut), a partition's.
    /// B takes the whole limit, one more waits, and the limit is exactly 2; a partition's agent then idles away.
    /// FAILED before (all three): the release, sent to the agent once more after two failures, failed twice again and was
    /// given up ("its lease stays counted until this node leaves the cluster"): B's acquire of the whole limit timed out.
    /// </summary>
    [Theory]
    [InlineData("facade")]
    [InlineData("claimed")]
    [InlineData("partition")]
    public async Task A_release_every_instance_fails_on_frees_its_permit_once(string lease)
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var name = $"resend-release-{lease}";
        if (lease != "partition")
        {
            var (a, b) = await LimitersAsync(cluster, name);
            if (lease == "facade")
            {
                var held = await a.AcquireAsync(source: "released").AsTask().WaitAsync(Step);
                await FailOnAsync(a.Agent, held.Dispose, message => message is ReleaseAgentLease, times: 4);
            }
            else
            {
                var claimed = (await Poll.ValueAsync(() => Task.FromResult(a.TryClaim(1, "claimed")), claim => claim is not null, Step))!;
                var loan = ((LimiterCounts)typeof(ClusterConcurrencyLimiter).GetField("_localCounts", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(a)!).Loan;
                await FailOnAsync(a.Agent, () =>
                {
                    loan.Suspend(); // as a resize does: the lease cannot go back into the loan, so it goes to the agent
                    claimed.Dispose();
                }, message => message is ReleaseClaimedLease, times: 4);
            }

            await AssertLimitIsExactlyAsync(a, b, 2);
            return;
        }

        var idle = TimeSpan.FromSeconds(1);
        var onA = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter(name, maxRunning: 2, maxQueued: null, idle);
        var onB = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter(name, maxRunning: 2, maxQueued: null, idle);
        var partitionLease = await onA.AcquireAsync("tenant", source: "released").AsTask().WaitAsync(Step);
        var agent = await cluster.Nodes[1].ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(Step);
        await FailOnAsync(agent, partitionLease.Dispose, message => message is ReleaseAgentLease, times: 4);
        await AssertLimitIsExactlyAsync(n => onB.AcquireAsync("tenant", n, source: "on B").AsTask(), () => onA.AcquireAsync("tenant", source: "on A").AsTask(),
            () => ClusterNodes.StatusAsync(onB, "tenant"), 2);
        await Poll.UntilAsync(() => !onA.Partitions.Live.ContainsKey("tenant"), Step, "the restarted partition agent idles away");
    }

    /// <summary>
    /// As above for a facade lease while a lease claimed from the node's block is out: applying the release must keep the
    /// claimed lease counted (the failing instance never reclaimed its loan; its stop counts the claims), so one more
    /// caller on A is granted, the next waits until the claimed lease is released, and the limit is exactly 2.
    /// FAILED before: the release was given up; the second caller's acquire timed out (both permits counted).
    /// </summary>
    [Fact]
    public async Task A_release_every_instance_fails_on_leaves_a_claimed_lease_counted()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await LimitersAsync(cluster, "resend-release-claim-out");
        var claimed = (await Poll.ValueAsync(() => Task.FromResult(a.TryClaim(1, "claimed")), claim => claim is not null, Step))!;
        var released = await a.AcquireAsync(source: "released").AsTask().WaitAsync(Step);

        await FailOnAsync(a.Agent, released.Dispose, message => message is ReleaseAgentLease, times: 4);

        await using (var second = await a.AcquireAsync(source: "second").AsTask().WaitAsync(Step))
        {
            var third = a.AcquireAsync(source: "third").AsTask();
            var seen = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.Waiting == 1 || third.IsCompleted, Step))!;
            Assert.False(third.IsCompleted, "the claimed lease's permit was granted again while it was held");
            Assert.Equal(2, seen.Running);
            claimed.Dispose();
            (await third.WaitAsync(Step)).Dispose();
        }

        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// Has <paramref name="agent"/> fail before its handler on the message <paramref name="send"/> sends (picked by
    /// <paramref name="isTarget"/>), in up to <paramref name="times"/> instances in a row: held in its suspended mailbox,
    /// put first; each instance's books broken while it is held, then let go; each next instance held as it is made
    /// (helper 157's suspending stash) and broken in turn while the message (handed on, or sent to the agent again) is in
    /// its mailbox. Returns once the instance after the last broken one (or the first that finds no such message) is let go.
    /// </summary>
    internal static async Task FailOnAsync(IActorRef agent, Action send, Func<object, bool> isTarget, int times)
    {
        var cell = (ActorCell)((ActorRefWithCell)agent).Underlying;
        await Poll.UntilAsync(() => cell.Mailbox!.MessageQueue.Count == 0, Step, "the agent's mailbox is empty");
        cell.Suspend();
        send();
        await Poll.UntilAsync(() => Tools.PutFirst(cell, isTarget), Step, "the message is in the agent's mailbox, first"); // a timer's tick may have come before it
        for (var broken = 0; broken < times; broken++)
        {
            var instance = Tools.ActorOf(cell);
            var stash = (IActorStash)instance;
            stash.Stash = new Tools.SuspendingStash(stash.Stash, cell, true);
            Tools.BreakBooks(instance);
            cell.Resume(null!);
            await Poll.UntilAsync(() => cell.IsTerminated || (!ReferenceEquals(Tools.ActorOf(cell), instance)
                                                             && Tools.IsSuspended(cell) && !Tools.HasSystemMessages(cell)), Step,
                "the next instance is made and held");
            if (cell.IsTerminated || !Tools.PutFirst(cell, isTarget))
            {
                break;
            }
        }

        if (!cell.IsTerminated)
        {
            cell.Resume(null!);
            await agent.Ask<ActorIdentity>(new Identify(null), Step); // the last instance answers
        }
    }

    /// <summary>Limiter <paramref name="name"/> (a limit of 2) on node A (the second node) and B, with A's agent in touch with the gatekeeper.</summary>
    private static Task<(ClusterConcurrencyLimiter A, ClusterConcurrencyLimiter B)> LimitersAsync(ClusterNodes cluster, string name) =>
        Tools.LimitersAsync(cluster, name);

    /// <summary>Model-API limiter <paramref name="name"/> (1000 tokens an hour) on node A, which is returned, and B.</summary>
    private static ClusterModelApiLimiter ModelApiLimiters(ClusterNodes cluster, string name)
    {
        var options = new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 100, tokensPerPeriod: 1000, TimeSpan.FromHours(1));
        ActorQueueCluster.Get(cluster.Nodes[0]).ModelApiLimiter(name, options);
        return ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter(name, options);
    }

    /// <summary>A probe on node A; its kit is not disposed: that would shut the node down.</summary>
    private static Akka.TestKit.TestProbe Probe(ClusterNodes cluster) => new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]).CreateTestProbe();
}
