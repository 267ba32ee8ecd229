namespace ActorQueue.Actors;

/// <summary>A lease gives <see cref="Permits"/> back in the turn (its loan was shut).</summary>
internal sealed class ReleaseOp(int permits) : ITurnOp
{
    /// <summary>The permits given back.</summary>
    public int Permits { get; } = permits;

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>The limiter stops: fail the waiters, later requests and claims; <paramref name="closed"/> runs once it is done.</summary>
internal sealed class CloseOp(Action closed) : ITurnOp
{
    /// <summary>Tells whoever waits for the limiter's stop that this turn's state is closed.</summary>
    public void Closed() => closed();

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}
