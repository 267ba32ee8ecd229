namespace ActorQueue.Actors;

/// <summary>The fields of a <see cref="RateLoan"/> of which the gatekeeper had more than the loan could hold.</summary>
[Flags]
internal enum LoanCaps
{
    /// <summary>Every field held all there was.</summary>
    None = 0,

    /// <summary>The free slots.</summary>
    Slots = 1,

    /// <summary>The free requests.</summary>
    Calls = 2,

    /// <summary>The free tokens.</summary>
    Tokens = 4,
}
