namespace ActorQueue.Actors;

/// <summary>How many queued items a free worker takes at once: the pool's policy, kept apart so it can be read and tested alone.</summary>
internal static class BacklogShare
{
    /// <summary>
    /// A free worker's share of the backlog among the workers that take items: at least one and at most
    /// <paramref name="workerBatch"/>, so a short queue keeps every worker busy and a long one is handed over in runs.
    /// </summary>
    /// <param name="backlog">Items waiting in the buffer (at least one when a worker is about to take some).</param>
    /// <param name="activeWorkers">Workers that take new items.</param>
    /// <param name="workerBatch">The most items one worker takes at once (at least 1).</param>
    public static int For(int backlog, int activeWorkers, int workerBatch) =>
        Math.Clamp(backlog / Math.Max(1, activeWorkers), 1, workerBatch);
}
