using ActorQueue.Tests.Cluster;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("ActorQueue.Tests.LongCollectionsFirst", "ActorQueue.Tests")]

namespace ActorQueue.Tests;

/// <summary>
/// Starts <see cref="ClusterProcessesCollection"/> before the other parallel collections, which keep xunit's own order
/// (by unique id). Its tests run one at a time for minutes, mostly waiting on processes (joins, leave bounds); started
/// last among the parallel collections, that serial stretch would end the parallel phase with one core idle.
/// (<see cref="ClusterCollection"/> runs after all of them whatever the order: it disables parallelization.)
/// </summary>
public sealed class LongCollectionsFirst : ITestCollectionOrderer
{
    /// <inheritdoc />
    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(collection => collection.DisplayName == ClusterProcessesCollection.Name ? 0 : 1)
            .ThenBy(collection => collection.UniqueID);
}
