namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Cluster tests whose nodes are all actorqueue processes and which spend nearly all their time waiting on a clock
/// rather than on the CPU: a certificate's end, a seed's 20 s of silence, jobs that sleep while their nodes stop. They
/// run one at a time, beside <see cref="ClusterProcessesCollection"/> rather than in it: in it they made that serial
/// collection 546 s long, the suite's longest path (CI of round 51: 13.2 minutes instead of about 10), while their
/// processes idle. <see cref="LongCollectionsFirst"/> starts both first, and xunit.runner.json allows two collections per
/// core so the two waiting collections leave the other collections their two threads.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ClusterProcessWaitsCollection
{
    public const string Name = "cluster-process-waits";
}
