using System.Collections;
using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 180) of the one-batch-at-a-time guard (fcd7db2, <c>WorkQueue.Batch.cs</c>): worker starts
/// (<c>ProcessAsync</c>, <c>Queue.StartWorkersAsync</c>) during a batch, racers at a barrier, every way a batch ends
/// (the guard must never stay taken), and the bound on a batch's wait for a disposal that lands after its items finished.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class BatchGuardReviewTests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// Worker starts while a batch runs (capacity 4, one worker, the batch's item 0 held): <c>ProcessAsync</c> (each
    /// overload) and <c>Queue.StartWorkersAsync</c> with another worker function. Expected: each is refused at once with an
    /// <see cref="InvalidOperationException"/> naming the queue and saying a batch is running; every item of the batch runs
    /// in the batch's worker; once the batch has completed, <c>ProcessAsync</c> starts workers again. Failed before: the
    /// worker start was accepted ("Assert.IsType() Failure: Expected InvalidOperationException, Actual: (null)") and
    /// replaced the batch's workers, so the batch's items ran in the other function.
    /// </summary>
    [Fact]
    public async Task Worker_starts_during_a_batch_are_refused_at_once_and_the_batch_is_untouched()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h180-hijack");
        var handled = new ConcurrentQueue<(string By, int Item)>();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 10), async item =>
        {
            handled.Enqueue(("batch", item));
            if (item == 0)
            {
                held.TrySetResult();
                await release.Task;
            }
        });
        await held.Task.WaitAsync(Bound);

        Task Other(int item)
        {
            handled.Enqueue(("other", item));
            return Task.CompletedTask;
        }

        var starts = new Func<Task>[]
        {
            () => queue.ProcessAsync(Other),
            () => queue.ProcessAsync((item, _) => Other(item), 1, null),
            () => queue.ProcessAsync((item, _) => Other(item), 1, null, CancellationToken.None),
            () => queue.Queue.StartWorkersAsync(Other, 1),
        };
        var refusals = new List<Exception?>();
        foreach (var start in starts)
        {
            refusals.Add(await Record.ExceptionAsync(() => start().WaitAsync(Bound)));
        }

        release.SetResult();
        await batch.WaitAsync(Bound);

        foreach (var refusal in refusals)
        {
            var refused = Assert.IsType<InvalidOperationException>(refusal);
            Assert.Contains("h180-hijack", refused.Message);
            Assert.Contains("batch is running", refused.Message);
        }

        Assert.Equal(Enumerable.Range(0, 10), handled.Select(h => h.Item).Order());
        Assert.All(handled, h => Assert.Equal("batch", h.By));

        var after = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.ProcessAsync(item =>
        {
            after.TrySetResult(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound);
        await queue.StartAsync().WaitAsync(Bound);
        Assert.True(await queue.PutAsync(42).WaitAsync(Bound));
        Assert.Equal(42, await after.Task.WaitAsync(Bound));
    }

    /// <summary>
    /// Two batches and a <c>ProcessAsync</c> released together at a barrier on dedicated threads, 30 rounds (capacity 2,
    /// one worker, each worker call held until every racer has returned, so a batch that starts outlives the race). Expected every round: at most one batch runs (the other is refused); a batch that ran had each of its
    /// items handled once, by its own worker function, never by the racing <c>ProcessAsync</c>'s or the other batch's;
    /// nothing else is thrown. Guards the atomicity of the check against the send (a check-then-send would let a start
    /// checked before the batch reach the router after the batch's own).
    /// </summary>
    [Fact]
    public async Task Batches_and_a_worker_start_racing_at_a_barrier_never_share_a_batchs_items()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h180-race");
        for (var round = 0; round < 30; round++)
        {
            var handled = new ConcurrentQueue<(string By, int Item)>();
            var raced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Func<int, Task> By(string who) => async item =>
            {
                handled.Enqueue((who, item));
                await raced.Task; // no batch ends before every racer has returned: the two overlap
            };

            var racers = new Func<Task>[]
            {
                () => queue.BatchProcessAsync(Enumerable.Range(0, 6), By("a")),
                () => queue.BatchProcessAsync(Enumerable.Range(100, 6), By("b")),
                () => queue.ProcessAsync(By("start")),
            };
            using var barrier = new Barrier(racers.Length);
            var tasks = new Task[racers.Length];
            var threads = racers.Select((race, i) => new Thread(() =>
            {
                barrier.SignalAndWait();
                try
                {
                    tasks[i] = race();
                }
                catch (Exception error)
                {
                    tasks[i] = Task.FromException(error);
                }
            }) { IsBackground = true }).ToArray();
            foreach (var thread in threads)
            {
                thread.Start();
            }

            foreach (var thread in threads)
            {
                Assert.True(thread.Join(Bound), "a racer never returned");
            }

            raced.SetResult();

            var outcomes = new Exception?[racers.Length];
            for (var i = 0; i < racers.Length; i++)
            {
                outcomes[i] = await Record.ExceptionAsync(() => tasks[i].WaitAsync(Bound));
                Assert.True(outcomes[i] is null or InvalidOperationException, $"round {round}, racer {i}: {outcomes[i]}");
            }

            Assert.False(outcomes[0] is null && outcomes[1] is null, $"round {round}: both batches ran");
            foreach (var (who, first, ran) in new[] { ("a", 0, outcomes[0] is null), ("b", 100, outcomes[1] is null) })
            {
                if (ran)
                {
                    var mine = handled.Where(h => h.Item >= first && h.Item < first + 6).ToArray();
                    Assert.Equal(Enumerable.Range(first, 6), mine.Select(h => h.Item).Order());
                    Assert.All(mine, h => Assert.Equal(who, h.By));
                }
            }
        }
    }

    /// <summary>
    /// A sequence whose <c>GetEnumerator</c> throws, and one that gives items 1 and 2 and then throws from its enumerator's
    /// <c>Dispose</c> (capacity 2, one worker). Expected, as the docs say of a failing sequence: the items it gave are
    /// processed, the batch throws the sequence's exception once the queue has stopped, and a later batch and
    /// <c>ProcessAsync</c> run. Failed before: the exception went straight out of the batch and left the queue processing
    /// with the batch's workers ("Assert.Equal() Failure: Expected: Stopped, Actual: Processing").
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_sequence_failing_outside_MoveNext_stops_the_queue_and_is_thrown(bool atGetEnumerator)
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys,
            name: $"h180-sequence-fails-{atGetEnumerator}");
        var processed = new ConcurrentQueue<int>();
        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(new BadSequence(atGetEnumerator), item =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound));

        Assert.Equal(atGetEnumerator ? "no enumerator" : "no dispose", Assert.IsType<InvalidDataException>(error).Message);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        Assert.Equal(atGetEnumerator ? [] : [1, 2], processed.Order());
        await AssertGuardReleasedAsync(queue);
    }

    /// <summary>
    /// Every way a batch ends leaves the guard released: a sequence failing at its first <c>MoveNext</c>, a token cancelled
    /// before the batch starts and one cancelled while it runs, an error handler that throws, a worker count refused
    /// (0), and, on a disposed queue, a batch refused as disposed twice (never "already running"). After each, a batch
    /// and a <c>ProcessAsync</c> run. Passes on fcd7db2 and after (pins the release).
    /// </summary>
    [Fact]
    public async Task Every_way_a_batch_ends_releases_the_guard()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h180-release");

        Assert.IsType<InvalidDataException>(await Record.ExceptionAsync(() => queue.BatchProcessAsync(FailsAtOnce(), _ => Task.CompletedTask).WaitAsync(Bound)));
        await AssertGuardReleasedAsync(queue);

        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queue.BatchProcessAsync([1], (_, _) => Task.CompletedTask, 1, null, cancelled.Token).WaitAsync(Bound));
        }

        await AssertGuardReleasedAsync(queue);

        using (var cancel = new CancellationTokenSource())
        {
            var batch = queue.BatchProcessAsync(Enumerable.Range(0, 10), async (_, token) =>
            {
                await cancel.CancelAsync();
                await Task.Delay(Timeout.Infinite, token);
            }, 1, (_, _) => Task.CompletedTask, cancel.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        }

        await queue.DrainAsync().WaitAsync(Bound);
        await AssertGuardReleasedAsync(queue);

        await queue.BatchProcessAsync([1, 2], _ => throw new InvalidOperationException("item"), 1, (_, _) => throw new InvalidOperationException("handler")).WaitAsync(Bound);
        await AssertGuardReleasedAsync(queue);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.BatchProcessAsync([1], _ => Task.CompletedTask, numWorkers: 0).WaitAsync(Bound));
        await AssertGuardReleasedAsync(queue);

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        for (var i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.BatchProcessAsync([1], _ => Task.CompletedTask).WaitAsync(Bound));
        }
    }

    /// <summary>
    /// A disposal that lands as a batch's last item finishes, while the actor system terminates (stop timeout 1 s), and
    /// while a durable queue's journal never answers a write (stop timeout 1 s): the batch waits for the disposal, which
    /// must be bounded. Expected: the batch ends (completes, or throws that it was disposed) within the bound, and later
    /// calls are refused as disposed, not as "a batch is running". Passes (the disposal's own bound, twice its stop
    /// timeout, holds the batch's wait).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_disposal_as_the_last_item_finishes_ends_the_batch_within_the_disposals_bound(bool hangingJournal)
    {
        async Task Run(ActorSystem system, QueueDurability? durability)
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1, Durability = durability },
                system: system, name: DurableStore.UniqueName("h180-last-item"));
            await queue.StartAsync().WaitAsync(Bound); // recovered: the next writes are the batch's
            var batch = queue.BatchProcessAsync([1, 2], item =>
            {
                if (item == 2)
                {
                    if (durability is null)
                    {
                        _ = system.Terminate();
                    }
                    else
                    {
                        WriteGatedJournal.Close();
                    }

                    queue.Dispose();
                }

                return Task.CompletedTask;
            });

            var error = await Record.ExceptionAsync(() => batch.WaitAsync(Bound));
            Assert.True(error is null or ObjectDisposedException or AggregateException, $"{error}");
            Assert.IsNotType<TimeoutException>(error);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound));
        }

        if (hangingJournal)
        {
            await WriteGatedJournal.OnHangingJournal("h180-hanging-journal", system => Run(system, WriteGatedJournal.Durability));
            return;
        }

        var own = ActorSystem.Create("h180-terminating", ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueueRuntime.DefaultConfig));
        try
        {
            await Run(own, null);
        }
        finally
        {
            await own.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>Asserts that no batch holds <paramref name="queue"/>: a batch runs through, then <c>ProcessAsync</c> starts workers.</summary>
    private async Task AssertGuardReleasedAsync(WorkQueue<int> queue)
    {
        var seen = new ConcurrentQueue<int>();
        await queue.BatchProcessAsync([7, 8], item =>
        {
            seen.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound);
        Assert.Equal([7, 8], seen.Order());
        await queue.ProcessAsync(_ => Task.CompletedTask).WaitAsync(Bound);
    }

    /// <summary>A sequence that fails at its first item.</summary>
    private static IEnumerable<int> FailsAtOnce()
    {
        throw new InvalidDataException("the sequence failed at once");
#pragma warning disable CS0162 // makes this an iterator
        yield break;
#pragma warning restore CS0162
    }

    /// <summary>A sequence whose enumerator cannot be had, or whose enumerator gives 1 and 2 and fails to dispose.</summary>
    private sealed class BadSequence(bool atGetEnumerator) : IEnumerable<int>
    {
        public IEnumerator<int> GetEnumerator() => atGetEnumerator ? throw new InvalidDataException("no enumerator") : new FailsToDispose();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Gives 1 and 2; its <see cref="Dispose"/> throws.</summary>
    private sealed class FailsToDispose : IEnumerator<int>
    {
        public int Current { get; private set; }

        object IEnumerator.Current => Current;

        public bool MoveNext() => ++Current <= 2;

        public void Reset() => Current = 0;

        public void Dispose() => throw new InvalidDataException("no dispose");
    }
}
