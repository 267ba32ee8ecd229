using ActorQueue.Tests.Cluster;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("ActorQueue.Tests.LongCollectionsFirst", "ActorQueue.Tests")]

namespace ActorQueue.Tests;

/// <summary>
/// Starts <see cref="ClusterProcessesCollection"/> and then <see cref="ClusterProcessWaitsCollection"/> before the other
/// parallel collections, which keep xunit's own order (by unique id). Their tests run one at a time for minutes, mostly
/// waiting on processes (joins, leave bounds, certificates' ends); started last among the parallel collections, such a
/// serial stretch would end the parallel phase with one core idle. xunit.runner.json allows 2 collections per core (4 on
/// two cores), so that waiting does not take either of the two threads the other collections share: with one thread per
/// core the parallel phase of CI took 440 s, the process collection's 255 s of it on one thread (round 48); with 1.5 per
/// core and one process collection, round 51's waiting tests made that collection the suite's longest path (546 s).
/// </summary>
public sealed class LongCollectionsFirst : ITestCollectionOrderer
{
    /// <inheritdoc />
    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(collection => collection.DisplayName switch
            {
                ClusterProcessesCollection.Name => 0,
                ClusterProcessWaitsCollection.Name => 1,
                _ => 2,
            })
            .ThenBy(collection => collection.UniqueID);
}
