using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>When a node's parent of rate partitions may stop a partition's agent: only on a gatekeeper's status at rest.</summary>
public sealed class PartitionRestTests
{
    private static readonly ModelApiLimiterOptions Rates = new(maxConcurrent: 4, requestsPerPeriod: 10, tokensPerPeriod: 1000, TimeSpan.FromHours(1));

    private static readonly ClusterLimiterStatus Resting =
        new("k", Running: 0, Waiting: 0, MaxRunning: 4, MaxQueued: null, Recovering: false, Agents: 1) { RequestsAvailable = 10, TokensAvailable = 1000 };

    [Fact]
    public void A_gatekeeper_with_full_rates_and_nothing_held_or_waiting_is_at_rest() =>
        Assert.True(PartitionAgentsActor.AtRest(Resting, Rates));

    [Fact]
    public void A_spent_request_a_spent_token_a_debt_a_lease_a_waiter_or_a_recovery_is_not_rest()
    {
        Assert.False(PartitionAgentsActor.AtRest(Resting with { RequestsAvailable = 9 }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { TokensAvailable = 999 }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { TokensAvailable = -5 }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { Running = 1 }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { Waiting = 1 }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { Recovering = true }, Rates));
        Assert.False(PartitionAgentsActor.AtRest(Resting with { RequestsAvailable = null, TokensAvailable = null }, Rates)); // a gatekeeper without rates answered
    }
}
