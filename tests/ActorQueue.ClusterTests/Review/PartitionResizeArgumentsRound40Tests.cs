using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 (helper 188): a partitioned cluster facade's resize checks its bounds before anything else, as a whole
/// cluster limiter's (<see cref="ClusterConcurrencyLimiter.ResizeAsync"/>) and a local one's do: a bad bound is an
/// <see cref="ArgumentOutOfRangeException"/> naming the parameter and the value whether or not the limiter is disposed.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionResizeArgumentsRound40Tests : OneNodeClusterTest
{
    /// <summary>
    /// Disposed facades of every cluster kind are given bad bounds: each call throws <see cref="ArgumentOutOfRangeException"/>
    /// naming the parameter and the value; good bounds then throw <see cref="ObjectDisposedException"/>.
    /// Failed before: the partitioned facades threw <see cref="ObjectDisposedException"/> for the bad bounds (they checked
    /// the disposal first), the whole limiter <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    [Fact]
    public async Task Bad_resize_bounds_of_a_disposed_limiter_name_their_parameter_and_value()
    {
        var cluster = ActorQueueCluster.Get(Node);
        var whole = cluster.Limiter("h188-args-whole", maxRunning: 2);
        var plain = cluster.PartitionedLimiter("h188-args-partitioned", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        var model = cluster.PartitionedModelApiLimiter<string>("h188-args-model", new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        await whole.DisposeAsync();
        await plain.DisposeAsync();
        await model.DisposeAsync();

        AssertOutOfRange("maxRunning", 0, () => _ = whole.ResizeAsync(maxRunning: 0));
        AssertOutOfRange("maxRunning", 0, () => _ = plain.ResizeAsync("k", maxRunning: 0)); // failed: ObjectDisposedException
        AssertOutOfRange("maxQueued", -1, () => plain.Resize("k", maxQueued: -1));
        AssertOutOfRange("maxConcurrent", -3, () => _ = model.ResizeAsync("k", maxConcurrent: -3));
        AssertOutOfRange("maxQueued", -1, () => model.Resize("k", maxQueued: -1));
        Assert.Throws<ObjectDisposedException>(() => { _ = plain.ResizeAsync("k", maxRunning: 3); });
        Assert.Throws<ObjectDisposedException>(() => plain.Resize("k", maxRunning: 3));
        Assert.Throws<ObjectDisposedException>(() => { _ = model.ResizeAsync("k", maxConcurrent: 3); });
        Assert.Throws<ObjectDisposedException>(() => model.Resize("k", maxConcurrent: 3));
    }

    private static void AssertOutOfRange(string parameter, int value, Action call)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(call);
        Assert.Equal((parameter, (object?)value), (error.ParamName, error.ActualValue));
        Assert.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }
}
