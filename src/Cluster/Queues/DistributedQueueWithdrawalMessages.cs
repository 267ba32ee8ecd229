namespace ActorQueue.Cluster;

// The wire messages of a distributed queue's withdrawal (DistributedWorkQueue.TryWithdrawAsync), beside the queue's
// others in Runtime/ClusterMessages.cs; ClusterMessageSerializer writes them ("WI", "WW").

/// <summary>
/// A producer → the router: withdraw this item of mine. The router takes it out of its queue (or a put waiting for
/// space) and answers <see cref="WithdrawAnswer"/> withdrawn; an item a worker runs is answered not withdrawn, runs to its
/// end, and is withdrawn instead of run again if its worker is lost. The router knows items by their producer (the sender).
/// </summary>
internal sealed record WithdrawItem(long Epoch, long ItemId) : IClusterMessage;

/// <summary>
/// The router → a producer: whether its item was withdrawn (it ends so: no worker runs it again; <see cref="Deliveries"/>
/// times it was handed to a worker before). Not withdrawn: a worker runs it, or it has its result already. Sent also
/// unasked, when an item withdrawn while running comes back from a lost worker.
/// </summary>
internal sealed record WithdrawAnswer(long ItemId, bool Withdrawn, int Deliveries, string Node) : IClusterMessage;
