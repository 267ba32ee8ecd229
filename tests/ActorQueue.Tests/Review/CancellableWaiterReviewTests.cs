using System.Runtime.CompilerServices;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Primitives;
using ActorQueue.Tests.Coordination;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A facade waiter awaited with a token that can fire: the caller awaits the waiter itself, and the token's registration
/// is dropped once the waiter is answered, whoever answered it (a grant, a failure, the token itself), so a long-lived
/// token — a host's stopping token, a request's abort token — keeps nothing of a wait that has ended.
/// (<c>FacadeWaiter.WatchCancellation</c>; before, an async method around the waiter disposed the registration.)
/// </summary>
public sealed class CancellableWaiterReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// Waits granted after queueing, each with the same long-lived token: once each lease is given back, nothing keeps it
    /// (the token's registration held the waiter, and the waiter its lease). A registration never dropped fails this.
    /// </summary>
    [Fact]
    public async Task A_granted_wait_leaves_nothing_registered_on_a_long_lived_token()
    {
        using var lifetime = new CancellationTokenSource();
        await using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), "review-cancellable-granted", system: Sys);

        var leases = await GrantedAfterWaiting(limiter, lifetime.Token, 3);

        await Collected(leases, "a granted wait's lease is still held through the token's registration");
        Assert.False(lifetime.IsCancellationRequested);
    }

    /// <summary>
    /// Waits that fail, each with the same long-lived token: timed out (answered by the gatekeeper's wake, after the
    /// token was registered), or refused at once for a full queue (the caller's own thread runs the turn that refuses it,
    /// before the token is registered, so the registration made after the answer must be dropped too). Their waiters
    /// (which hold their exceptions) are not kept by the token.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failed_wait_leaves_nothing_registered_on_a_long_lived_token(bool refusedAtOnce)
    {
        using var lifetime = new CancellationTokenSource();
        var limit = refusedAtOnce ? new ConcurrencyLimit(1, MaxQueued: 0) : new ConcurrencyLimit(1);
        await using var limiter = new ConcurrencyLimiter(limit, $"review-cancellable-failed-{refusedAtOnce}", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());

        var failures = refusedAtOnce
            ? await Failed<ConcurrencyLimitExceededException>(limiter, null, lifetime.Token, 3)
            : await Failed<ConcurrencyWaitTimeoutException>(limiter, TimeSpan.FromMilliseconds(1), lifetime.Token, 3);

        await Collected(failures, "a failed wait is still held through the token's registration");
    }

    /// <summary>
    /// A waiter granted before its caller watches a token (a turn the caller's own thread ran granted it at once, with no
    /// failure and no captured context made): the registration made after the answer is dropped by the registrar.
    /// </summary>
    [Fact]
    public async Task A_wait_granted_before_its_token_is_registered_leaves_nothing_registered()
    {
        using var lifetime = new CancellationTokenSource();

        var waiters = new WeakReference[3];
        for (var i = 0; i < waiters.Length; i++)
        {
            waiters[i] = await GrantedFirst(lifetime.Token, i);
        }

        await Collected(waiters, "a waiter granted before its token was registered is still held through the registration");
    }

    /// <summary>A primitive's waiter (a semaphore's) with a long-lived token: once the wait is granted, the token keeps nothing of it.</summary>
    [Fact]
    public async Task A_primitive_wait_leaves_nothing_registered_on_a_long_lived_token()
    {
        using var lifetime = new CancellationTokenSource();
        await using var semaphore = new AsyncSemaphore(0, system: Sys);

        var waits = await AcquiredAfterWaiting(semaphore, lifetime.Token, 3);

        await Collected(waits, "a granted semaphore wait is still held through the token's registration");
    }

    /// <summary>A token that fires while the caller waits still withdraws it, and one that fires after the grant changes nothing.</summary>
    [Fact]
    public async Task The_token_still_withdraws_a_waiting_caller_and_is_ignored_once_it_is_granted()
    {
        await using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), "review-cancellable-control", system: Sys);
        var held = await Within(limiter.AcquireAsync(1).AsTask());
        using var cancelled = new CancellationTokenSource();
        using var late = new CancellationTokenSource();
        var withdrawn = limiter.AcquireAsync(1, cancellationToken: cancelled.Token).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the first caller waits");

        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(withdrawn));
        var granted = limiter.AcquireAsync(1, cancellationToken: late.Token).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");
        held.Dispose();
        using var lease = await Within(granted);
        await late.CancelAsync();
        Assert.Equal(1, limiter.RunningCount);
    }

    /// <summary>Weak references to <paramref name="count"/> leases each granted after waiting, each given back.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<WeakReference[]> GrantedAfterWaiting(ConcurrencyLimiter limiter, CancellationToken token, int count)
    {
        var leases = new WeakReference[count];
        var held = await Within(limiter.AcquireAsync(1).AsTask());
        for (var i = 0; i < count; i++)
        {
            var waiting = limiter.AcquireAsync(1, cancellationToken: token).AsTask();
            await Eventually(() => limiter.WaitingCount == 1, "the caller waits");
            held.Dispose();
            held = await Within(waiting);
            leases[i] = new WeakReference(held);
        }

        held.Dispose();
        return leases;
    }

    /// <summary>Weak references to the exceptions of <paramref name="count"/> waits that failed (each waiter holds its own).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<WeakReference[]> Failed<TException>(ConcurrencyLimiter limiter, TimeSpan? waitTimeout, CancellationToken token, int count)
        where TException : Exception
    {
        var failures = new WeakReference[count];
        for (var i = 0; i < count; i++)
        {
            var failure = await Assert.ThrowsAsync<TException>(
                () => Within(limiter.AcquireAsync(1, waitTimeout: waitTimeout, cancellationToken: token).AsTask()));
            failures[i] = new WeakReference(failure);
        }

        return failures;
    }

    /// <summary>A weak reference to a waiter granted lease <paramref name="id"/>, then awaited with <paramref name="token"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<WeakReference> GrantedFirst(CancellationToken token, long id)
    {
        var waiter = new FacadeWaiterTests.LeaseWaiter();
        Assert.True(waiter.TryGrant(new PermitGrant(id, PermitDemand.One, default, Waited: false)));
        Assert.Equal(id, await Within(waiter.WaitAsync(token).AsTask()));
        return new WeakReference(waiter);
    }

    /// <summary>Weak references to <paramref name="count"/> semaphore waits (the tasks their waiters complete), each granted by a release.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<WeakReference[]> AcquiredAfterWaiting(AsyncSemaphore semaphore, CancellationToken token, int count)
    {
        var waits = new WeakReference[count];
        for (var i = 0; i < count; i++)
        {
            var waiting = semaphore.AcquireAsync(token);
            semaphore.Release();
            await Within(waiting);
            waits[i] = new WeakReference(waiting);
        }

        return waits;
    }

    /// <summary>Collects until every one of <paramref name="references"/> is gone, for a few seconds (a pool work item may hold one for a moment).</summary>
    private static Task Collected(WeakReference[] references, string because) => Poll.UntilAsync(() =>
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        return references.All(reference => !reference.IsAlive);
    }, TimeSpan.FromSeconds(10), because);
}
