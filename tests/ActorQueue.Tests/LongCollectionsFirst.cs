using ActorQueue.Tests.Cluster;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("ActorQueue.Tests.LongCollectionsFirst", "ActorQueue.Tests")]

namespace ActorQueue.Tests;

/// <summary>
/// Starts <see cref="ClusterProcessesCollection"/> before the other parallel collections, which keep xunit's own order
/// (by unique id). Its tests run one at a time for minutes, mostly waiting on processes (joins, leave bounds); started
/// last among the parallel collections, that serial stretch would end the parallel phase with one core idle.
/// xunit.runner.json allows 1.5 collections per core (3 on two cores), so that waiting does not take one of the two
/// threads the other collections share: with one thread per core the parallel phase of CI took 440 s, the process
/// collection's 255 s of it on one thread (round 48).
/// </summary>
public sealed class LongCollectionsFirst : ITestCollectionOrderer
{
    /// <inheritdoc />
    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(collection => collection.DisplayName == ClusterProcessesCollection.Name ? 0 : 1)
            .ThenBy(collection => collection.UniqueID);
}
