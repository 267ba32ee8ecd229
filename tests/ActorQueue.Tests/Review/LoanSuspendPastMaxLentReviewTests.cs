using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: the suspended encoding of <see cref="PermitLoan"/> (low half <c>Suspended - k</c>, with <c>k</c> the lent
/// permits nobody claimed). <see cref="PermitLoan.MaxLent"/> caps what a loan lends, but not what the open word holds
/// later: returns into the loan raise the lent half by what was held when it was lent (held + lent stays the limit), so
/// a limit of <c>int.MaxValue</c> lent with 2 held reaches <c>MaxLent + 2</c> once they come back, and
/// <c>Suspended - (MaxLent + 2)</c> wraps to <c>int.MaxValue</c>: the suspend OPENS the loan instead of shutting it.
/// Failed on 677d34f, before the fix: after <c>Resize(maxRunning: 1)</c> returned, two callers claim a permit each at once.
/// </summary>
public sealed class LoanSuspendPastMaxLentReviewTests : ActorQueueTestKit
{
    [Fact]
    public void A_suspend_of_a_loan_that_returns_raised_past_MaxLent_leaves_it_shut()
    {
        var loan = new PermitLoan();
        loan.Publish(2); // the gatekeeper, inside a message: two permits held (say by leases granted by message)
        Assert.True(loan.Lend(2, PermitLoan.MaxLent), "the gatekeeper lends the free permits, capped at MaxLent");
        // Both held leases come back; a loan may refuse a return (it then goes by message), main takes both.
        var returned = (loan.TryReturn(1) ? 1 : 0) + (loan.TryReturn(1) ? 1 : 0);

        loan.Suspend();

        Assert.False(loan.IsOpen, $"a suspended loan is shut (returned into it: {returned})");
        Assert.Equal(0, loan.Unclaimed);
        Assert.False(loan.TryClaim(1), "nothing is claimed from a suspended loan");
        Assert.Equal(PermitLoan.MaxLent + (long)returned, loan.Reclaim(out var held));
        Assert.Equal(2 - returned, held);
    }

    [Fact]
    public async Task No_claim_is_served_on_the_old_limit_once_a_shrink_of_an_int_MaxValue_limiter_returned()
    {
        await using var limiter = new ConcurrencyLimiter(int.MaxValue, system: Sys, name: "review-max-lent");
        var adapter = limiter.AsRateLimiter();
        await this.StatusOf(limiter);
        await Eventually(() => adapter.AttemptAcquire(0).IsAcquired, "the gatekeeper lends");

        var first = await Within(limiter.AcquireAsync("first").AsTask());
        var second = await Within(limiter.AcquireAsync("second").AsTask());

        // The next message reclaims (2 held) and lends again: MaxLent, with the 2 held beside it.
        await this.StatusOf(limiter);
        await Eventually(() => adapter.AttemptAcquire(0).IsAcquired, "the gatekeeper lends again with two permits held");
        first.Dispose();
        second.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "both leases are back");

        limiter.Resize(maxRunning: 1);
        var one = limiter.AcquireAsync("one").AsTask();
        var two = limiter.AcquireAsync("two").AsTask();

        Assert.False(one.IsCompleted && two.IsCompleted,
            $"two leases held at once after Resize(maxRunning: 1) returned (running {limiter.RunningCount}, max {limiter.MaxRunning})");
        var granted = await Within(Task.WhenAny(one, two));
        var running = limiter.RunningCount;
        Assert.True(running == 1, $"running {running} with one lease granted after Resize(maxRunning: 1) (the other {(one.IsCompleted && two.IsCompleted ? "granted too" : "waits")})");
        (await granted).Dispose();
        (await Within(granted == one ? two : one)).Dispose();
    }
}
