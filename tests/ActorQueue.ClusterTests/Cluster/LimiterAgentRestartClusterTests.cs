using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A cluster limiter whose node agent's handler throws, on a one-node cluster with its real gatekeeper: the callers
/// waiting are still granted and the leases held still come back, so no permit of the gatekeeper leaks. Before, the
/// agent restarted empty: the waiter failed as "disposed", and the release of the lease held was ignored.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LimiterAgentRestartClusterTests : OneNodeClusterTest
{
    [Fact]
    public async Task After_the_agent_failed_on_a_message_its_waiter_is_granted_and_every_permit_comes_back()
    {
        var limiter = DefectiveAgent.Limiter(Node, "agent-defect", maxRunning: 1);
        var held = await limiter.AcquireAsync("held").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = limiter.AcquireAsync("waiting").AsTask();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 1, ClusterNodes.StepTimeout);

        limiter.Agent.Tell(DefectiveAgent.Defect.Instance);
        held.Dispose();
        (await waiting.WaitAsync(ClusterNodes.StepTimeout)).Dispose();

        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal((0, 0), (status.Running, status.Waiting));
        await using var next = await limiter.AcquireAsync("next").AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    [Fact]
    public async Task A_lease_held_when_the_agent_failed_on_a_message_still_frees_its_permit_at_the_gatekeeper()
    {
        var limiter = DefectiveAgent.Limiter(Node, "agent-defect-lease", maxRunning: 1);
        var held = await limiter.AcquireAsync("held").AsTask().WaitAsync(ClusterNodes.StepTimeout);

        limiter.Agent.Tell(DefectiveAgent.Defect.Instance);
        held.Dispose();

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Running == 0, ClusterNodes.StepTimeout);
        await using var next = await limiter.AcquireAsync("next").AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }
}
