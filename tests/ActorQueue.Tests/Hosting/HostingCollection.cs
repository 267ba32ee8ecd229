namespace ActorQueue.Tests.Hosting;

/// <summary>
/// Hosts make their actor system the process-wide default for facades created without one; the tests that start a
/// host run alone, after the parallel ones, so no other test's facade lands on a host's system that then stops.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostingCollection
{
    public const string Name = "hosting";
}
