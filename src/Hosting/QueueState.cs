using ActorQueue.Actors;

namespace ActorQueue.Hosting;

/// <summary>A named queue's state at one moment: its status, the items waiting in it and its bound, and its counters.</summary>
/// <param name="Name">The queue's name in the options.</param>
/// <param name="Status">Whether it is idle, processing, stopping or stopped.</param>
/// <param name="Size">Items waiting in it.</param>
/// <param name="Capacity">How many items it holds at most (puts wait beyond).</param>
/// <param name="Metrics">Its counters.</param>
internal readonly record struct QueueState(string Name, QueueStatus Status, int Size, int Capacity, QueueMetrics Metrics);
