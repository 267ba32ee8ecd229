using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 41 (helper 193): a cluster facade's <c>ResizeAsync</c> given a token already cancelled does nothing and throws
/// <see cref="OperationCanceledException"/>, as .NET's convention has it; before, it sent the resize anyway (its token only
/// stopped the wait for the answer), so a caller that gave up before calling had the limit changed behind its back.
/// Bad bounds are still refused first. Each limiter here starts with two permits.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CancelledResizeRound41Tests : OneNodeClusterTest
{
    /// <summary>
    /// A resize to five permits with a cancelled token throws <see cref="OperationCanceledException"/>; a later awaited
    /// resize of the queue bound alone is heard applied (resizes of one node are applied in the order sent), and the
    /// limit is still two, on the facade and at the gatekeeper. Bad bounds with a cancelled token are an
    /// <see cref="ArgumentOutOfRangeException"/> naming the parameter.
    /// Failed before: the limit was five (the cancelled resize was sent and applied), for every kind.
    /// </summary>
    [Theory]
    [InlineData("whole")]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_resize_with_a_cancelled_token_throws_and_changes_nothing(string kind)
    {
        var (resize, status, dispose) = Facade(kind, $"h193-cancelled-resize-{kind}");
        await status(); // the agent made and following its gatekeeper
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = resize(0, null, cancelled.Token); });
        Assert.Equal(kind == "partitioned-model-api" ? "maxConcurrent" : "maxRunning", refused.ParamName);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => resize(5, null, cancelled.Token));
        await resize(null, 7, CancellationToken.None).WaitAsync(ClusterNodes.StepTimeout);

        var limit = await status();
        Assert.Equal((2, (int?)7), (limit.MaxRunning, limit.MaxQueued)); // failed: (5, 7)
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>A facade of <paramref name="kind"/> with two permits: its awaited resize (of key "k" for a partitioned one), its status (of "k") and its dispose.</summary>
    private (Func<int?, int?, CancellationToken, Task> Resize, Func<Task<ClusterLimiterStatus>> Status, Func<ValueTask> Dispose) Facade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        switch (kind)
        {
            case "whole":
                var whole = cluster.Limiter(name, maxRunning: 2, maxQueued: 10);
                return ((running, queued, token) => whole.ResizeAsync(running, queued, token), () => whole.GetStatusAsync(ClusterNodes.StepTimeout), whole.DisposeAsync);
            case "partitioned":
                var plain = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: 10, TimeSpan.FromMinutes(10));
                return ((running, queued, token) => plain.ResizeAsync("k", running, queued, token), () => plain.GetStatusAsync("k", ClusterNodes.StepTimeout), plain.DisposeAsync);
            default:
                var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)) { MaxQueued = 10 },
                    TimeSpan.FromMinutes(10));
                return ((running, queued, token) => model.ResizeAsync("k", running, queued, token), () => model.GetStatusAsync("k", ClusterNodes.StepTimeout), model.DisposeAsync);
        }
    }
}
