using ActorQueue.Primitives;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Primitives;

public class AsyncCapacityLimiterTests : ActorQueueTestKit
{
    [Fact]
    public async Task Tokens_are_borrowed_one_per_borrower_and_handed_on_in_fifo_order()
    {
        using var limiter = new AsyncCapacityLimiter(2, Sys);
        object a = new(), b = new(), c = new(), d = new();
        await limiter.AcquireOnBehalfOfAsync(a);
        await limiter.AcquireOnBehalfOfAsync(b);
        Assert.Equal((2, 0d), (limiter.BorrowedTokens, limiter.AvailableTokens));
        var third = limiter.AcquireOnBehalfOfAsync(c);
        await Eventually(() => limiter.WaitingCount == 1, "c waits");
        var fourth = limiter.AcquireOnBehalfOfAsync(d);
        await Eventually(() => limiter.WaitingCount == 2, "d waits");

        limiter.ReleaseOnBehalfOf(a);

        await Within(third);
        Assert.False(fourth.IsCompleted, "d is behind c");
        limiter.ReleaseOnBehalfOf(b);
        await Within(fourth);
    }

    [Fact]
    public async Task The_same_borrower_cannot_hold_two_tokens()
    {
        using var limiter = new AsyncCapacityLimiter(5, Sys);
        var borrower = new object();
        await limiter.AcquireOnBehalfOfAsync(borrower);

        await Assert.ThrowsAsync<InvalidOperationException>(() => limiter.AcquireOnBehalfOfAsync(borrower));
        await limiter.AcquireAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => limiter.AcquireAsync());
        Assert.Equal(2, limiter.BorrowedTokens);
    }

    [Fact]
    public async Task Releasing_for_a_borrower_that_holds_nothing_throws()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var borrower = new object();
        Assert.Throws<InvalidOperationException>(() => limiter.ReleaseOnBehalfOf(borrower));
        Assert.Throws<InvalidOperationException>(limiter.Release);
        await limiter.AcquireOnBehalfOfAsync(borrower);

        limiter.ReleaseOnBehalfOf(borrower);

        Assert.Throws<InvalidOperationException>(() => limiter.ReleaseOnBehalfOf(borrower));
        Assert.Equal("borrower", Assert.Throws<ArgumentNullException>(() => limiter.ReleaseOnBehalfOf(null!)).ParamName);
        Assert.Equal("borrower", (await Assert.ThrowsAsync<ArgumentNullException>(() => limiter.AcquireOnBehalfOfAsync(null!))).ParamName);
    }

    [Fact]
    public async Task Raising_total_tokens_wakes_waiters_in_order_and_lowering_takes_nothing_back()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var holder = new object();
        await limiter.AcquireOnBehalfOfAsync(holder);
        var first = limiter.AcquireOnBehalfOfAsync(new object());
        await Eventually(() => limiter.WaitingCount == 1, "first waits");
        var second = limiter.AcquireOnBehalfOfAsync(new object());
        await Eventually(() => limiter.WaitingCount == 2, "second waits");

        limiter.TotalTokens = 2;
        await Within(first);
        Assert.False(second.IsCompleted);
        limiter.TotalTokens = 1;

        Assert.Equal(1d, limiter.TotalTokens);
        await Eventually(() => limiter.BorrowedTokens == 2, "nothing was taken back");
        Assert.Equal(-1d, limiter.AvailableTokens);
        limiter.ReleaseOnBehalfOf(holder);
        Assert.False(second.IsCompleted, "one of one tokens is still borrowed");
        limiter.TotalTokens = double.PositiveInfinity;
        await Within(second);
    }

    [Theory]
    [InlineData(0d)]
    [InlineData(-1d)]
    [InlineData(0.5d)]
    [InlineData(2.5d)]
    [InlineData(double.NaN)]
    [InlineData(double.NegativeInfinity)]
    [InlineData(3e9)]
    [InlineData(2147483648d)]
    [InlineData(double.MaxValue)]
    public void Bad_token_counts_are_rejected_naming_the_parameter_and_value(double tokens)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncCapacityLimiter(tokens, Sys));
        Assert.Equal("totalTokens", ex.ParamName);
        Assert.Contains($"got {tokens}", ex.Message);

        using var limiter = new AsyncCapacityLimiter(double.PositiveInfinity, Sys);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.TotalTokens = tokens).ParamName);
    }

    [Fact]
    public async Task A_cancelled_borrower_takes_nothing_and_may_try_again()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        await limiter.AcquireOnBehalfOfAsync("holder");
        using var cts = new CancellationTokenSource();
        var borrower = new object();
        var cancelled = limiter.AcquireOnBehalfOfAsync(borrower, cts.Token);
        await Eventually(() => limiter.WaitingCount == 1, "queued");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        await Eventually(() => limiter.WaitingCount == 0, "withdrawn");
        limiter.ReleaseOnBehalfOf("holder");

        await Within(limiter.AcquireOnBehalfOfAsync(borrower));
    }

    [Fact]
    public async Task A_flow_that_waits_is_refused_a_second_token_and_may_ask_again_once_its_wait_is_cancelled()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        await limiter.AcquireOnBehalfOfAsync("holder");
        using var cts = new CancellationTokenSource();
        var first = limiter.AcquireAsync(cts.Token);
        var second = limiter.AcquireAsync(); // at once: the coordinator may not have queued the first yet
        var scope = limiter.LockAsync().AsTask();

        await Assert.ThrowsAsync<InvalidOperationException>(() => Within(second));
        await Assert.ThrowsAsync<InvalidOperationException>(() => Within(scope));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(first));
        var again = limiter.AcquireAsync(); // not refused as waiting: the cancelled acquire freed the flow
        limiter.ReleaseOnBehalfOf("holder");

        await Within(again);
        limiter.Release();
        await Eventually(() => limiter.BorrowedTokens == 0, "the flow gave back its one token");
        Assert.Throws<InvalidOperationException>(limiter.Release);
    }

    [Fact]
    public async Task An_actor_that_withdraws_its_wait_may_ask_again()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        await limiter.AcquireOnBehalfOfAsync("holder");
        var actor = CreateTestProbe();
        limiter.Coordinator.Tell(new Acquire(1), actor.Ref);
        await Eventually(() => limiter.WaitingCount == 1, "the actor waits");
        limiter.Coordinator.Tell(new CancelAcquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Cancelled(1));

        limiter.Coordinator.Tell(new Acquire(2), actor.Ref);
        await Eventually(() => limiter.WaitingCount == 1, "the actor waits again instead of being refused as a waiting borrower");
        limiter.ReleaseOnBehalfOf("holder");

        await actor.ExpectMsgAsync(new Acquired(2));
    }

    [Fact]
    public async Task An_actor_borrows_a_token_and_gets_it_back_by_stopping()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var actor = CreateTestProbe();
        limiter.Coordinator.Tell(new Acquire(1), actor.Ref);
        await actor.ExpectMsgAsync(new Acquired(1));
        limiter.Coordinator.Tell(new Acquire(2), actor.Ref);
        Assert.Equal(2, (await actor.ExpectMsgAsync<Refused>()).RequestId);
        var waiting = limiter.AcquireOnBehalfOfAsync(new object());

        Sys.Stop(actor.Ref);

        await Within(waiting);
    }
}
