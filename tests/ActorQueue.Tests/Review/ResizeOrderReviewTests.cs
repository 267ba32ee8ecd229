using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: two resizes in a row (IConcurrencyLimiter.Resize: "MaxRunning and MaxQueued show the new values at once";
/// shrinking: "new grants wait until enough come back"). The gatekeeper's handling of the first must not put its limit
/// back over the second, nor lend on it.
/// </summary>
public sealed class ResizeOrderReviewTests : ActorQueueTestKit
{
    [Fact]
    public async Task After_a_grow_then_a_shrink_returned_neither_MaxRunning_nor_the_claims_go_back_to_the_grown_limit()
    {
        for (var i = 0; i < 400; i++)
        {
            await using var limiter = new ActorQueue.Actors.ConcurrencyLimiter(1, name: $"review-resize-{i}", system: Sys);
            var adapter = limiter.AsRateLimiter();
            limiter.Resize(maxRunning: 5);
            limiter.Resize(maxRunning: 2);

            // Handled after both resizes: until it answers, the gatekeeper may still be between the two.
            var status = limiter.Gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)));
            var held = new List<RateLimitLease>();
            var maxSeen = 0;
            var heldMost = 0;
            for (var spin = 0; spin < 2_000_000 && !status.IsCompleted; spin++)
            {
                maxSeen = Math.Max(maxSeen, limiter.MaxRunning);
                var lease = adapter.AttemptAcquire();
                if (lease.IsAcquired)
                {
                    held.Add(lease);
                    heldMost = Math.Max(heldMost, held.Count);
                }
            }

            await Within(status);
            held.ForEach(lease => lease.Dispose());
            Assert.True(heldMost <= 2, $"iteration {i}: {heldMost} leases claimed at once after Resize(maxRunning: 2) returned");
            Assert.True(maxSeen <= 2, $"iteration {i}: MaxRunning read {maxSeen} after Resize(maxRunning: 2) returned");
        }
    }
}
