namespace ActorQueue.Coordination;

/// <summary>
/// A rate whose answers change with time only at whole steps (a bucket's refill, a window's segment sliding): between
/// two steps, what it grants depends on what was taken alone. That is what lets its owner lend what it holds until
/// the step ends (<c>RateLoan</c>): a claim made before the step is the same as a take at the moment of the loan.
/// </summary>
internal interface ISteppedRate : IRestingPolicy
{
    /// <summary>When the current step ends: the next refill, or the end of the current segment; always after <paramref name="now"/>.</summary>
    TimeSpan StepEndsAt(TimeSpan now);
}
