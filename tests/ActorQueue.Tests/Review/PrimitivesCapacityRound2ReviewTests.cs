using ActorQueue.Coordination;
using ActorQueue.Primitives;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>Second review of the capacity tokens (helper primitives2): distinct borrowers, the total read back, racing setters, shrinking and growing, and borrowers cancelled while the total changes.</summary>
public class PrimitivesCapacityRound2ReviewTests : ActorQueueTestKit
{
    /// <summary>A borrower with value equality: two instances with one id are equal, yet distinct objects.</summary>
    private sealed record Borrower(int Id);

    /// <summary>
    /// <c>AcquireOnBehalfOfAsync</c> documents its borrower as "compared by reference". Two distinct borrowers that
    /// merely compare equal (records, strings built at run time) must each borrow a token of their own.
    /// </summary>
    [Fact]
    public async Task Two_distinct_borrowers_that_compare_equal_each_borrow_a_token()
    {
        using var limiter = new AsyncCapacityLimiter(2, Sys);
        var first = new Borrower(1);
        var second = new Borrower(1);

        await Within(limiter.AcquireOnBehalfOfAsync(first));
        await Within(limiter.AcquireOnBehalfOfAsync(second)); // distinct by reference: not "already holding"
        Assert.Equal(2, limiter.BorrowedTokens);

        limiter.ReleaseOnBehalfOf(first);
        limiter.ReleaseOnBehalfOf(second);
        await Eventually(() => limiter.BorrowedTokens == 0, "both tokens came back");
    }

    /// <summary>
    /// A thread that sets <c>TotalTokens</c> and reads it back must see what it set (or a later set), never an older
    /// value. Failed before: the facade wrote the mirror and the coordinator wrote it again as it handled each set, so
    /// a coordinator behind on its mailbox put back an older total (here: 2 read after setting 1, until the coordinator
    /// caught up). The coordinator is held inside the grant that the older set makes, with the newer set queued behind.
    /// </summary>
    [Fact]
    public async Task TotalTokens_reads_back_what_the_same_thread_just_set()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var holder = new object();
        await Within(limiter.AcquireOnBehalfOfAsync(holder));
        var first = new HeldAtGrant(limiter.Coordinator, new object());
        var second = new HeldAtGrant(limiter.Coordinator, new object());
        limiter.Coordinator.Tell(first, ActorRefs.NoSender);
        limiter.Coordinator.Tell(second, ActorRefs.NoSender);
        await Eventually(() => limiter.WaitingCount == 2, "both wait");

        limiter.ReleaseOnBehalfOf(holder);
        await Within(first.Entered.Task); // the coordinator is held granting the first
        limiter.TotalTokens = 2;          // queued: will grant the second
        limiter.TotalTokens = 1;          // queued behind it
        first.Go.Set();
        await Within(second.Entered.Task); // the coordinator is held in the set to 2, the set to 1 still queued
        var read = limiter.TotalTokens;
        second.Go.Set();

        Assert.Equal(1d, read); // before: 2
        await Within(first.WaitAsTaskAsync(CancellationToken.None));
        await Within(second.WaitAsTaskAsync(CancellationToken.None));
        limiter.ReleaseOnBehalfOf(first.Owner!);
        limiter.ReleaseOnBehalfOf(second.Owner!);
        await Eventually(() => limiter.BorrowedTokens == 0 && limiter.TotalTokens == 1, "all back, total 1");
    }

    /// <summary>
    /// Two threads set <c>TotalTokens</c> at once: the total read afterwards is the one the coordinator enforces (the
    /// guard for the fix above: the mirror is now the facade's, and a set that reaches the coordinator behind a later
    /// one is ignored, so both end at the latest set).
    /// </summary>
    [Fact]
    public async Task Racing_setters_leave_the_read_total_and_the_enforced_total_the_same()
    {
        for (var round = 0; round < 20; round++)
        {
            using var limiter = new AsyncCapacityLimiter(1, Sys);
            var setters = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
            {
                for (var i = 0; i < 300; i++)
                {
                    limiter.TotalTokens = 1 + ((i + t) % 3);
                }
            })).ToArray();
            await Within(Task.WhenAll(setters));

            var total = (int)limiter.TotalTokens;
            var holders = Enumerable.Range(0, total).Select(_ => new object()).ToList();
            foreach (var holder in holders)
            {
                await Within(limiter.AcquireOnBehalfOfAsync(holder)); // the enforced total lets every one in
            }

            var extra = limiter.AcquireOnBehalfOfAsync(new object());
            await Eventually(() => limiter.WaitingCount == 1, $"round {round}: one past the total ({total}) waits");
            Assert.False(extra.IsCompleted, $"round {round}: total {total} read, more lent");
            Assert.Equal((double)total, limiter.TotalTokens);
        }
    }

    /// <summary>
    /// Lowering the total below what is borrowed takes no token back, and waiters get a token only once the borrowed
    /// count is below the new total; raising it again grants the waiters it makes room for at once, in order.
    /// </summary>
    [Fact]
    public async Task Shrinking_keeps_held_tokens_and_grants_only_below_the_new_total_and_growing_grants_at_once()
    {
        using var limiter = new AsyncCapacityLimiter(3, Sys);
        var holders = Enumerable.Range(0, 3).Select(_ => new object()).ToList();
        foreach (var holder in holders)
        {
            await Within(limiter.AcquireOnBehalfOfAsync(holder));
        }

        var waiters = Enumerable.Range(0, 3).Select(_ => new object()).ToList();
        var waits = new List<Task>();
        foreach (var waiter in waiters)
        {
            waits.Add(limiter.AcquireOnBehalfOfAsync(waiter));
            await Eventually(() => limiter.WaitingCount == waits.Count, "queued in order");
        }

        limiter.TotalTokens = 1;
        Assert.Equal(-2d, limiter.AvailableTokens);
        limiter.ReleaseOnBehalfOf(holders[0]);
        await Eventually(() => limiter.BorrowedTokens == 2, "one came back, nobody granted (2 borrowed, total 1)");
        limiter.ReleaseOnBehalfOf(holders[1]);
        await Eventually(() => limiter.BorrowedTokens == 1, "another came back, nobody granted (1 borrowed, total 1)");
        Assert.DoesNotContain(waits, w => w.IsCompleted);

        limiter.ReleaseOnBehalfOf(holders[2]);
        await Within(waits[0]); // below the total at last: the oldest waiter
        Assert.Equal(1, limiter.BorrowedTokens);
        Assert.Equal(2, limiter.WaitingCount);

        limiter.TotalTokens = 3; // room for both others, granted by the one resize
        await Within(Task.WhenAll(waits));
        Assert.Equal(3, limiter.BorrowedTokens);
        foreach (var waiter in waiters)
        {
            limiter.ReleaseOnBehalfOf(waiter);
        }

        await Eventually(() => limiter.BorrowedTokens == 0, "all back");
    }

    /// <summary>A borrower whose grant holds the coordinator's thread until the test lets it go.</summary>
    private sealed class HeldAtGrant(IActorRef coordinator, object owner) : PrimitiveWaiter(coordinator, owner)
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ManualResetEventSlim Go { get; } = new(false);

        public override bool TryGrant(in PermitGrant grant)
        {
            Entered.TrySetResult();
            Go.Wait(TimeSpan.FromSeconds(30));
            return base.TryGrant(grant);
        }
    }

    /// <summary>
    /// Borrowers come and go, some cancelled, while the total is raised and lowered (never below 1) for as long as any
    /// of them runs: nobody hangs, and every token comes back. (Each flow's cancel-at-random acquire is written out, not
    /// shared through an async helper: the limiter and the lock know a borrower by its flow, and what an acquire made
    /// inside a helper's own async method would not flow back to the caller.)
    /// </summary>
    [Fact]
    public async Task Borrowers_cancelled_while_the_total_changes_all_finish_and_return_every_token()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var flows = Enumerable.Range(0, 6).Select(f => InAnotherFlow(async () =>
        {
            var random = new Random(f);
            for (var i = 0; i < 200; i++)
            {
                using var cts = new CancellationTokenSource();
                var acquire = limiter.AcquireAsync(cts.Token);
                if (random.Next(3) == 0)
                {
                    Thread.SpinWait(random.Next(200));
                    cts.Cancel();
                }

                try
                {
                    await acquire;
                }
                catch (OperationCanceledException)
                {
                    continue;
                }

                limiter.Release();
            }
        })).ToArray();

        // The total changes (never below 1) for as long as any flow runs: no window of time decides how long.
        var all = Task.WhenAll(flows);
        using var stop = new CancellationTokenSource();
        var resizer = Task.Factory.StartNew(() => // a dedicated thread: it spins for as long as the flows run, on the pool they need
        {
            var total = 1;
            while (!all.IsCompleted && !stop.IsCancellationRequested)
            {
                total = total % 3 + 1;
                limiter.TotalTokens = total;
                Thread.SpinWait(500);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        try
        {
            await Within(all);
        }
        finally
        {
            stop.Cancel();
            await resizer;
        }
        await Eventually(() => limiter.BorrowedTokens == 0 && limiter.WaitingCount == 0, $"every token came back (borrowed {limiter.BorrowedTokens})");
    }
}
