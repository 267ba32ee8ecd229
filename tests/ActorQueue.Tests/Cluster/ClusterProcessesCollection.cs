namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Cluster tests whose nodes are all actorqueue processes (the CLI's <c>run --cluster</c> and <c>node</c>): one at a
/// time (their processes would otherwise compete for the two cores, and their failure detectors with them), but beside
/// the other parallel collections: they share no thread pool with the test process. (The cluster tests with nodes in
/// the test process are in ActorQueue.ClusterTests, a test process of their own that `dotnet test` runs beside this one.) <see cref="LongCollectionsFirst"/> starts it first, so its
/// minutes of mostly idle waiting (leave bounds, joins) overlap the rest of the suite.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ClusterProcessesCollection
{
    public const string Name = "cluster-processes";
}
