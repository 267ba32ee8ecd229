using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// A borrower of a value type (an id, a <see cref="Guid"/>, a record struct) has no identity of its own: each call boxes
/// it anew. It is one borrower by its value, so the same value releases the token it took and cannot take a second.
/// Reference types stay borrowers by reference (<see cref="Review.PrimitivesCapacityRound2ReviewTests"/>).
/// </summary>
public sealed class ValueBorrowersRound46Tests : ActorQueueTestKit
{
    private readonly record struct TenantId(int Value);

    /// <summary>
    /// Failed before: InvalidOperationException "This borrower holds no token of this capacity limiter." — the release
    /// boxed 42 anew, a different object from the holder's box, so the token taken for 42 could never come back.
    /// </summary>
    [Fact]
    public async Task A_value_type_borrower_gives_its_token_back_with_an_equal_value()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);

        await Within(limiter.AcquireOnBehalfOfAsync(42));
        Assert.Equal(1, limiter.BorrowedTokens);
        limiter.ReleaseOnBehalfOf(42);

        await Eventually(() => limiter.BorrowedTokens == 0, "the token came back");
        await Within(limiter.AcquireOnBehalfOfAsync(new TenantId(7))); // the freed token is taken again
        limiter.ReleaseOnBehalfOf(new TenantId(7));
        await Eventually(() => limiter.BorrowedTokens == 0, "the record struct's token came back");
    }

    /// <summary>
    /// Failed before: the second acquire for the same <see cref="Guid"/> succeeded (a new box, so a second borrower) and
    /// the one borrower held two tokens, one of which no release could ever reach.
    /// </summary>
    [Fact]
    public async Task An_equal_value_is_the_same_borrower_and_cannot_take_a_second_token()
    {
        using var limiter = new AsyncCapacityLimiter(2, Sys);
        var tenant = Guid.NewGuid();
        await Within(limiter.AcquireOnBehalfOfAsync(tenant));

        var second = await Assert.ThrowsAsync<InvalidOperationException>(() => Within(limiter.AcquireOnBehalfOfAsync(tenant)));

        Assert.Contains("already holding", second.Message, StringComparison.Ordinal);
        Assert.Equal(1, limiter.BorrowedTokens);
        limiter.ReleaseOnBehalfOf(tenant);
        await Eventually(() => limiter.BorrowedTokens == 0, "its one token came back");
    }
}
