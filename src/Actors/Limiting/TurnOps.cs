namespace ActorQueue.Actors;

/// <summary>The limiter stops: fail the waiters, later requests and claims; <paramref name="closed"/> runs once it is done.</summary>
internal sealed class CloseOp(Action closed) : ITurnOp
{
    /// <summary>Tells whoever waits for the limiter's stop that this turn's state is closed.</summary>
    public void Closed() => closed();

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}
