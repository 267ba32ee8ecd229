namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Cluster tests with nodes in the test process: they form clusters on loopback and time failure detection, so they run
/// one at a time. They are this assembly's only collection, and this assembly is a test process of its own: `dotnet
/// test` runs it beside ActorQueue.Tests, so its nodes share the two cores with the rest of the suite but no thread
/// pool (as the actorqueue processes of ClusterProcessesCollection do).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster";
}
