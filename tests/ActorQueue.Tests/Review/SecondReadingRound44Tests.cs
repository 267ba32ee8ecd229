using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 44 second reading (helper 205) of the routers' settling at the system's end (6bb9fbc: the ledger keeps the
/// items getters hold and discards them when the router goes) and of the worker gate's counted waiter (0502d8f). One
/// defect, in both routers: a disposal completed before the items getters held were settled (discarded in memory, handed
/// back to the journal when durable); the other tests guard against a named
/// plausible wrong implementation (its mutant, tried and reverted).
/// </summary>
public sealed class SecondReadingRound44Tests
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static QueueLedger<int> LedgerWith(params int[] items)
    {
        var ledger = new QueueLedger<int>(16, new("queue", "round44-second-reading"));
        foreach (var item in items)
        {
            ledger.Add(item);
        }

        return ledger;
    }

    /// <summary>
    /// Getters hold items 1 and 2; one <c>TaskDone</c> counts the oldest as processed; the router goes
    /// (<see cref="QueueLedger{T}.DiscardTaken"/>), and a <c>TaskDone</c> that still reached the ledger afterwards counts
    /// nothing. Expected: item 2 alone discarded, nothing in flight, the conservation holds, and the late TaskDone is refused
    /// (no item is counted both discarded and processed). Mutant caught: <c>DiscardTaken</c> that counts the held items as
    /// discarded but leaves them held (<c>_taken?.ToList()</c> instead of <c>PopAll()</c>): InFlight reads 1 and the late
    /// TaskDone counts item 2 as processed too.
    /// </summary>
    [Fact]
    public void A_getter_item_discarded_is_never_counted_again_by_a_late_TaskDone()
    {
        var ledger = LedgerWith(1, 2, 3);
        Assert.Equal(1, ledger.TakeForGetter(out _));
        Assert.Equal(2, ledger.TakeForGetter(out _));
        Assert.True(ledger.GetterDone());

        var discarded = ledger.DiscardTaken();

        Assert.Equal([2], discarded);
        var metrics = ledger.Metrics;
        Assert.Equal((0L, 1L, 1L), (metrics.InFlight, metrics.Discarded, metrics.Processed));
        Assert.Null(ledger.BrokenInvariant());
        Assert.False(ledger.GetterDone(), "a TaskDone after the discard counted an item already discarded");
        Assert.Equal(1L, ledger.Metrics.Processed);
        Assert.Empty(ledger.DiscardTaken());
        Assert.Equal(1L, ledger.Metrics.Discarded);
        Assert.Equal(metrics.Enqueued, ledger.Metrics.Processed + ledger.Metrics.Discarded + ledger.Size + ledger.Metrics.InFlight);
    }

    /// <summary>
    /// A getter holds item 1; item 2 reaches a getter that had gone (cancelled) and goes back to the head. Then the router
    /// goes. Expected: the item reported as held by a getter (the error handler hears it) is item 1, and item 2 is still
    /// queued (discarded as queued, reported once as such). Mutant caught: <c>ReturnFromGetter</c> that takes the oldest
    /// held item back (<c>PopFront</c> instead of <c>PopBack</c>): item 2 is reported twice (queued, and as held by a getter),
    /// and item 1, which a getter really holds, never ("Collections differ").
    /// </summary>
    [Fact]
    public void The_item_a_cancelled_getter_gave_back_is_not_reported_as_held()
    {
        var ledger = LedgerWith(1, 2, 3);
        Assert.Equal(1, ledger.TakeForGetter(out _));
        var returned = ledger.TakeForGetter(out var trace);
        ledger.ReturnFromGetter(returned, trace);

        var queued = ledger.DiscardAll();
        var held = ledger.DiscardTaken();

        Assert.Equal([2, 3], queued);
        Assert.Equal([1], held);
        Assert.Equal(3L, ledger.Metrics.Discarded);
        Assert.Null(ledger.BrokenInvariant());
    }

    /// <summary>
    /// A queue in memory whose getter holds its only item is disposed. Expected, as soon as the disposal completes: the item
    /// counted once, as discarded (nothing in flight, nothing processed, the conservation holds), the getter's late
    /// <c>TaskDone</c> refused as disposed (so never counted), and the error handler told of it once, as an
    /// <see cref="ObjectDisposedException"/>. Failed before: "Expected: (0, 1), Actual: (1, 0)" — the disposal completed
    /// (CheckStopped, with nothing queued) before the router's PostStop discarded the held item, so a caller whose
    /// disposal had completed read it in flight, and the disposal did not wait for its report.
    /// </summary>
    [Fact]
    public async Task A_queue_in_memory_disposed_under_a_getters_item_reports_it_once_and_counts_it_once()
    {
        var system = ActorQueueRuntime.Create("h205-memory-dispose");
        var reported = new ConcurrentQueue<(Exception Error, string Item)>();
        try
        {
            var queue = new BoundedQueue<string>(10, system: system, name: DurableStore.UniqueName("h205-getter"), workerBatch: 1);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync("taken").WaitAsync(Bound));
            Assert.Equal("taken", await queue.GetAsync().WaitAsync(Bound));
            await queue.StartWorkersAsync((_, _) => Task.CompletedTask, numWorkers: 1, (error, item) =>
            {
                reported.Enqueue((error, item));
                return Task.CompletedTask;
            }).WaitAsync(Bound);

            await queue.DisposeAsync().AsTask().WaitAsync(Bound);

            var metrics = queue.Metrics;
            Assert.Equal((0L, 1L), (metrics.InFlight, metrics.Discarded));
            Assert.Equal((1L, 0L, 0), (metrics.Enqueued, metrics.Processed, queue.Size));
            Assert.Throws<ObjectDisposedException>(queue.TaskDone);
            await Poll.UntilAsync(() => !reported.IsEmpty, Bound, "the held item is reported");
            var report = Assert.Single(reported);
            Assert.Equal("taken", report.Item);
            Assert.IsType<ObjectDisposedException>(report.Error);
            Assert.Equal((0L, 1L, 0L), (queue.Metrics.InFlight, queue.Metrics.Discarded, queue.Metrics.Processed));
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A durable queue whose getter holds its only item is disposed, then opened again (twice). Expected: the disposed
    /// queue counts the item queued again (Size 1, nothing in flight, nothing discarded); the reopened one hands it out
    /// once, counts it processed once after <c>TaskDone</c>, and its join completes; the third opening finds nothing.
    /// Failed before (a race: once in two runs here, under load): "Expected: (0, 1, 0), Actual: (1, 0, 0)" — CheckStopped
    /// answered the disposal before the router's PostStop (Settle) handed the held item back. With
    /// <c>_book.ReturnRunning()</c> removed from Settle it failed too (mutant tried on the old code).
    /// </summary>
    [Fact]
    public async Task A_durable_queue_disposed_under_a_getters_item_runs_it_once_when_opened_again()
    {
        var system = ActorQueueRuntime.Create("h205-durable-dispose");
        using var store = new DurableStore(system);
        var name = DurableStore.UniqueName("h205-durable-getter");
        try
        {
            var first = new BoundedQueue<string>(10, store.Durability(), name, system: system);
            await first.StartAsync().WaitAsync(Bound);
            Assert.True(await first.PutAsync("taken").WaitAsync(Bound));
            Assert.Equal("taken", await first.GetAsync().WaitAsync(Bound));
            await first.DisposeAsync().AsTask().WaitAsync(Bound);
            Assert.Equal((0L, 1, 0L), (first.Metrics.InFlight, first.Size, first.Metrics.Discarded));

            var second = new BoundedQueue<string>(10, store.Durability(), name, system: system);
            await second.StartAsync().WaitAsync(Bound);
            Assert.Equal(1, second.Size);
            Assert.Equal("taken", await second.GetAsync().WaitAsync(Bound));
            second.TaskDone();
            await second.JoinAsync().WaitAsync(Bound);
            Assert.Equal((1L, 0L, 0, 0L), (second.Metrics.Processed, second.Metrics.InFlight, second.Size, second.Metrics.Discarded));
            await second.DisposeAsync().AsTask().WaitAsync(Bound);

            var third = new BoundedQueue<string>(10, store.Durability(), name, system: system);
            await third.StartAsync().WaitAsync(Bound);
            Assert.Equal((0, 0L), (third.Size, third.Metrics.InFlight));
            await third.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A start is being sent; batches A (cancellable) and B wait on the one waiter; A is cancelled, then the start leaves.
    /// Expected: A throws with its own token and leaves the waiter published for B; the last start wakes B, which takes the
    /// workers; then no waiter is left and the gate is free once B ends. Mutant caught: a <c>LeaveAndClose</c> that closes
    /// on any leave (no count: <c>Interlocked.Exchange(ref _waiting, Closed); return true;</c>): A withdraws B's waiter
    /// ("the cancelled batch withdrew the waiter B waited on"), and B waits for ever.
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_leaves_the_waiter_to_the_batch_still_on_it()
    {
        var gate = new WorkerGate();
        Assert.True(gate.TryEnterStart());
        using var cts = new CancellationTokenSource();
        var a = gate.TryBeginBatchAsync(cts.Token).AsTask();
        var b = gate.TryBeginBatchAsync().AsTask();
        Assert.False(a.IsCompleted || b.IsCompleted);

        await cts.CancelAsync();
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.WaitAsync(Bound));
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.True(gate.HasWaiter, "the cancelled batch withdrew the waiter B waited on");

        gate.LeaveStart();
        Assert.True(await b.WaitAsync(Bound));
        Assert.False(gate.HasWaiter);
        Assert.True(gate.BatchOwns);
        gate.EndBatch();
        Assert.True(gate.IsFree);
    }

    /// <summary>
    /// A batch waits alone and is cancelled; a second batch then comes while the start is still being sent. Expected: the
    /// cancelled batch withdrew its waiter; the second publishes a fresh one, which the last start completes, so it takes
    /// the workers. Mutant caught: a <c>Leave</c> that closes the waiter but does not withdraw it (no
    /// <c>CompareExchange(ref _startsSent, null, waiter)</c>): "the last batch to leave left its waiter".
    /// </summary>
    [Fact]
    public async Task The_last_batch_to_leave_withdraws_the_waiter_and_the_next_publishes_another()
    {
        var gate = new WorkerGate();
        Assert.True(gate.TryEnterStart());
        using var cts = new CancellationTokenSource();
        var first = gate.TryBeginBatchAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.WaitAsync(Bound));
        Assert.False(gate.HasWaiter, "the last batch to leave left its waiter");

        var next = gate.TryBeginBatchAsync().AsTask();
        Assert.False(next.IsCompleted);
        Assert.True(gate.HasWaiter);
        gate.LeaveStart();
        Assert.True(await next.WaitAsync(Bound));
        gate.EndBatch();
        Assert.True(gate.IsFree);
        Assert.False(gate.HasWaiter);
    }

    /// <summary>
    /// A batch waits alone and is cancelled; as it leaves, the last, another batch comes: before the leaver closes the
    /// waiter (<see cref="WorkerGate.LastLeaving"/>, <paramref name="closed"/> false), or once it has closed it and before
    /// it withdraws it (<see cref="WorkerGate.ClosedLeaving"/>, true). Expected: the newcomer waits on a published waiter
    /// (the one it joined, the leaver's close failing; or its own, as it does not join a closed one), and the last start
    /// wakes it to take the workers. Mutants caught: a <c>LeaveAndClose</c> returning <c>left == 0</c> without closing
    /// the waiter (no <c>CompareExchange(ref _waiting, Closed, 0)</c>; false case), and a <c>TryJoin</c> that joins a
    /// closed waiter (<c>while (true)</c> for <c>while (waiting != Closed)</c>; true case): either way the leaver withdraws
    /// the waiter the newcomer is on, and the newcomer waits for ever.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_batch_coming_as_the_last_one_leaves_waits_on_a_published_waiter(bool closed)
    {
        var gate = new WorkerGate();
        Assert.True(gate.TryEnterStart());
        using var cts = new CancellationTokenSource();
        var leaving = gate.TryBeginBatchAsync(cts.Token).AsTask();
        Task<bool>? newcomer = null;
        void Come()
        {
            gate.LastLeaving = gate.ClosedLeaving = null;
            newcomer = gate.TryBeginBatchAsync().AsTask();
        }

        if (closed)
        {
            gate.ClosedLeaving = Come;
        }
        else
        {
            gate.LastLeaving = Come;
        }

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving.WaitAsync(Bound));
        Assert.NotNull(newcomer);
        Assert.False(newcomer.IsCompleted);
        Assert.True(gate.HasWaiter, "the newcomer waits on a withdrawn waiter");
        await StartsSentThenRuns(gate, newcomer);
    }

    /// <summary>The last start leaves: <paramref name="batch"/>, waiting, takes the workers, and the gate ends free with no waiter.</summary>
    private static async Task StartsSentThenRuns(WorkerGate gate, Task<bool> batch)
    {
        gate.LeaveStart();
        var ran = false;
        try
        {
            ran = await batch.WaitAsync(Bound);
        }
        catch (TimeoutException)
        {
            Assert.Fail("a batch was stranded on a waiter no start completes");
        }

        Assert.True(ran);
        Assert.False(gate.HasWaiter);
        gate.EndBatch();
        Assert.True(gate.IsFree);
    }

    /// <summary>
    /// Stress guard (an invariant, no timing): each round a start is being sent, four batches come from the pool (two of
    /// them cancelled at once from the pool) while the start leaves from the pool. Expected every round: every batch ends
    /// (none waits on a waiter the last start did not complete), at most one runs, one does whenever a batch not cancelled
    /// came, and no waiter is left. Mutant caught: a <c>LeaveAndClose</c> that closes on any leave ("a batch left a waiter it
    /// had not joined", or a stranded batch). The narrower windows (a join as the last batch leaves, or once it closed the
    /// waiter) were not hit here by their mutants: the two hooked tests above catch those deterministically.
    /// </summary>
    [Fact]
    public async Task Racing_joins_cancellations_and_the_last_start_never_strand_a_batch()
    {
        for (var round = 0; round < 2_000; round++)
        {
            var gate = new WorkerGate();
            Assert.True(gate.TryEnterStart());
            using var go = new ManualResetEventSlim();
            var tokens = Enumerable.Range(0, 4).Select(_ => new CancellationTokenSource()).ToArray();
            var batches = tokens.Select(cts => Task.Run(async () =>
            {
                go.Wait();
                return await gate.TryBeginBatchAsync(cts.Token);
            })).ToArray();
            var cancels = tokens.Take(2).Select(cts => Task.Run(() =>
            {
                go.Wait();
                cts.Cancel();
            })).ToArray();
            var start = Task.Run(() =>
            {
                go.Wait();
                gate.LeaveStart();
            });
            go.Set();
            await Task.WhenAll([start, .. cancels]).WaitAsync(Bound);

            var ran = 0;
            foreach (var batch in batches)
            {
                try
                {
                    ran += await batch.WaitAsync(Bound) ? 1 : 0;
                }
                catch (OperationCanceledException) when (batch.IsCanceled || batch.IsFaulted)
                {
                    // cancelled while it waited: nothing taken
                }
                catch (TimeoutException)
                {
                    Assert.Fail($"round {round}: a batch was stranded at the gate (its waiter was withdrawn or never completed)");
                }
            }

            Assert.True(ran <= 1, $"round {round}: {ran} batches ran");
            Assert.True(ran == 1, $"round {round}: the batches not cancelled were all refused though none ran");
            Assert.True(gate.BatchOwns);
            gate.EndBatch();
            Assert.True(gate.IsFree, $"round {round}: the gate was left held");
            Assert.False(gate.HasWaiter, $"round {round}: a waiter was left");
            foreach (var cts in tokens)
            {
                cts.Dispose();
            }
        }
    }
}
