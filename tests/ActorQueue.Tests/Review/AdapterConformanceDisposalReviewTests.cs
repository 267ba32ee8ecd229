using System.Threading.RateLimiting;
using ActorQueue.Actors;
using BclConcurrencyLimiter = System.Threading.RateLimiting.ConcurrencyLimiter;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the RateLimiting adapters against System.Threading.RateLimiting's limiters: waiters failed by the limiter's disposal, a cancel or a disposal racing a permit's return, and a waiter's continuation kept off the releaser's thread.</summary>
public sealed class AdapterConformanceDisposalReviewTests : ActorQueueTestKit
{
    private static BclConcurrencyLimiter Bcl(int permits, int queue) =>
        new(new ConcurrencyLimiterOptions { PermitLimit = permits, QueueLimit = queue, QueueProcessingOrder = QueueProcessingOrder.OldestFirst });

    /// <summary>
    /// DEFECT (fixed). A caller waiting in the adapter's AcquireAsync when the limiter was disposed got
    /// ObjectDisposedException (failed before: "System.ObjectDisposedException : The concurrency limiter has been
    /// disposed."); the BCL's limiters complete their waiters with a failed lease on disposal (shown first), so
    /// ASP.NET Core's middleware answers 503 instead of failing the request with an exception. A call made after the
    /// disposal still throws. Fix: ConcurrencyRateLimiter.AcquireAsyncCore answers ObjectDisposedException from the wait with a failed lease.
    /// </summary>
    [Fact]
    public async Task A_waiter_failed_by_the_limiters_disposal_gets_a_failed_lease_as_from_the_BCL()
    {
        var bcl = Bcl(1, 1);
        var bheld = bcl.AttemptAcquire(1);
        var bw = bcl.AcquireAsync(1).AsTask();
        bcl.Dispose();
        var bl = await Within(bw);
        Assert.False(bl.IsAcquired);

        var limiter = new ConcurrencyLimiter(1, maxQueued: 1, system: Sys);
        var adapter = limiter.AsRateLimiter();
        var held = await adapter.AcquireAsync(1);
        var waiting = adapter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "waits");
        await limiter.DisposeAsync();
        var lease = await Within(waiting);
        Assert.False(lease.IsAcquired);
        Assert.True(lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && reason!.Contains("disposed", StringComparison.Ordinal), reason);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await adapter.AcquireAsync(1));
        held.Dispose();
    }

    /// <summary>
    /// DEFECT (fixed). As <see cref="A_waiter_failed_by_the_limiters_disposal_gets_a_failed_lease_as_from_the_BCL"/>
    /// for the partitioned adapter, on both of its wait paths (without a token: the request's own completion; with one:
    /// the withdrawing wait); failed before with ObjectDisposedException. Fix: PartitionedLimiterAdapter.IsRefusal
    /// counts ObjectDisposedException from a wait as a refusal.
    /// </summary>
    [Fact]
    public async Task A_partitioned_waiter_failed_by_the_limiters_disposal_gets_a_failed_lease()
    {
        var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(1), "p", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(r => r);
        var held = await adapter.AcquireAsync("a", 1);
        var waiting = adapter.AcquireAsync("a", 1).AsTask();
        using var cts = new CancellationTokenSource();
        var waiting2 = adapter.AcquireAsync("a", 1, cts.Token).AsTask();
        await Eventually(() => adapter.GetStatistics("a")!.CurrentQueuedCount == 2, "waits");
        await limiter.DisposeAsync();
        var lease = await Within(waiting);
        Assert.False(lease.IsAcquired);
        var lease2 = await Within(waiting2);
        Assert.False(lease2.IsAcquired);
        held.Dispose();
    }

    /// <summary>
    /// Checked, correct: a waiter's continuation never runs inline inside the Dispose of the lease that freed its
    /// permit (both adapters, with and without a cancellable token), 50 rounds each.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task A_waiters_continuation_does_not_run_inside_the_releasers_Dispose(bool partitioned, bool cancellable)
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        await using var plimiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(1), "p", system: Sys);
        var adapter = limiter.AsRateLimiter();
        var padapter = plimiter.AsPartitionedRateLimiter<string>(r => r);
        using var cts = new CancellationTokenSource();
        var token = cancellable ? cts.Token : default;
        for (var round = 0; round < 50; round++)
        {
            var held = partitioned ? await padapter.AcquireAsync("a", 1) : await adapter.AcquireAsync(1);
            var releasing = -1;
            var inline = false;
            var vt = partitioned ? padapter.AcquireAsync("a", 1, token) : adapter.AcquireAsync(1, token);
            var waiter = InAnotherFlow(async () =>
            {
                var lease = await vt;
                inline = Volatile.Read(ref releasing) == Environment.CurrentManagedThreadId;
                return lease;
            });
            await Eventually(() => (partitioned ? padapter.GetStatistics("a")!.CurrentQueuedCount : limiter.WaitingCount) == 1, "waits");
            Volatile.Write(ref releasing, Environment.CurrentManagedThreadId);
            held.Dispose();
            Volatile.Write(ref releasing, -1);
            var lease = await Within(waiter);
            Assert.True(lease.IsAcquired);
            Assert.False(inline, $"round {round}: the waiter's continuation ran inside the holder's Dispose");
            lease.Dispose();
            await Eventually(() => (partitioned ? plimiter.StatisticsOf("a")!.Running : limiter.RunningCount) == 0, "released");
        }
    }

    /// <summary>
    /// Checked: a wait cancelled while its permit is given back ends with the lease or with OperationCanceledException,
    /// never both, never neither, and no permit is lost: both adapters, 100 rounds each.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_a_wait_as_its_permit_frees_loses_no_permit(bool partitioned)
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        await using var plimiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(1), "p", system: Sys);
        var adapter = limiter.AsRateLimiter();
        var padapter = plimiter.AsPartitionedRateLimiter<string>(r => r);
        var granted = 0;
        for (var round = 0; round < 100; round++)
        {
            var held = partitioned ? await padapter.AcquireAsync("a", 1) : await adapter.AcquireAsync(1);
            Assert.True(held.IsAcquired);
            using var cts = new CancellationTokenSource();
            var waiter = (partitioned ? padapter.AcquireAsync("a", 1, cts.Token) : adapter.AcquireAsync(1, cts.Token)).AsTask();
            await Eventually(() => (partitioned ? padapter.GetStatistics("a")!.CurrentQueuedCount : limiter.WaitingCount) == 1, "waits");
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var release = Task.Run(async () => { await go.Task; held.Dispose(); });
            var cancel = Task.Run(async () => { await go.Task; cts.Cancel(); });
            go.SetResult();
            await Within(Task.WhenAll(release, cancel));
            try
            {
                using var lease = await Within(waiter);
                Assert.True(lease.IsAcquired);
                granted++;
            }
            catch (OperationCanceledException)
            {
            }

            await Eventually(() => partitioned ? plimiter.StatisticsOf("a") is null or { Running: 0, Waiting: 0 } : limiter.RunningCount == 0 && limiter.WaitingCount == 0, $"round {round}: every permit came back");
        }

        var statistics = partitioned ? padapter.GetStatistics("a")! : adapter.GetStatistics()!;
        Assert.Equal(100 + granted, statistics.TotalSuccessfulLeases);
        using var last = partitioned ? await Within(padapter.AcquireAsync("a", 1).AsTask()) : await Within(adapter.AcquireAsync(1).AsTask());
        Assert.True(last.IsAcquired);
    }

    /// <summary>
    /// Checked: disposing the limiter while its permits are being given back and callers wait ends every wait (a lease
    /// or a failed lease, never an exception, never a hang): both adapters, 30 rounds of 10 waiters.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposing_the_limiter_as_permits_come_back_ends_every_wait(bool partitioned)
    {
        for (var round = 0; round < 30; round++)
        {
            var limiter = new ConcurrencyLimiter(2, system: Sys);
            var plimiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(2), TimeSpan.FromMinutes(1), "p", system: Sys);
            var adapter = limiter.AsRateLimiter();
            var padapter = plimiter.AsPartitionedRateLimiter<string>(r => r);
            using var cts = new CancellationTokenSource();
            var held = new List<RateLimitLease>();
            for (var i = 0; i < 2; i++)
            {
                held.Add(partitioned ? await padapter.AcquireAsync("a", 1) : await adapter.AcquireAsync(1));
            }

            var waiters = Enumerable.Range(0, 10)
                .Select(i => (partitioned ? padapter.AcquireAsync("a", 1, i % 2 == 0 ? cts.Token : default) : adapter.AcquireAsync(1, i % 2 == 0 ? cts.Token : default)).AsTask())
                .ToArray();
            await Eventually(() => (partitioned ? padapter.GetStatistics("a")!.CurrentQueuedCount : limiter.WaitingCount) == 10, "they wait");
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var release = Task.Run(async () => { await go.Task; held.ForEach(lease => lease.Dispose()); });
            var dispose = Task.Run(async () => { await go.Task; await (partitioned ? plimiter.DisposeAsync() : limiter.DisposeAsync()); });
            go.SetResult();
            await Within(Task.WhenAll(release, dispose));
            foreach (var waiter in waiters)
            {
                (await Within(waiter)).Dispose();
            }

            await limiter.DisposeAsync();
            await plimiter.DisposeAsync();
        }
    }
}
