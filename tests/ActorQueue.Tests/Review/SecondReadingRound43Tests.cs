using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Hosting;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 43 (helper 202): a second, adversarial reading of three changes merged this session — the durable router's
/// <c>Settle</c> publishing Stopped before it completes the stops and cancels the tries (3168393), hosting options
/// refusing digits-only names (1b1a7de), and <c>BatchProcessAsync</c> taking its <c>before</c> counts once the queue
/// has started (d45c09f). Each test says which wrong implementation it catches.
/// </summary>
public sealed class SecondReadingRound43Tests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    // ---- 3168393: Settle publishes Stopped, then completes the stops, then cancels the tries ----

    /// <summary>
    /// A durable queue stopping (no timeout) while its worker holds "long" ("done" ran before it), and the actor system
    /// terminates: the router's PostStop (Settle) cancels the try only after publishing Stopped. The try cancelled then
    /// must not be lost nor reported: its worker's token is cancelled once the queue reads Stopped, the error handler
    /// hears nothing, and the queue opened again on another actor system holds exactly "long" ("done" is not run again).
    /// Catches: a try cancelled after the publish taken for a failure (reported, or journaled as dead/completed, so the
    /// item is gone on reopening), or the tries cancelled before Stopped is published again (the token sees Stopping).
    /// </summary>
    [Fact]
    public async Task A_try_cancelled_after_Stopped_was_published_keeps_its_item_in_the_journal_unreported()
    {
        var first = ActorQueueRuntime.Create("h202-settle-keeps");
        using var store = new DurableStore(first);
        var name = DurableStore.UniqueName("h202-settle-keeps");
        var (running, cancelled) = (Signal(), new TaskCompletionSource<QueueStatus>(TaskCreationOptions.RunContinuationsAsynchronously));
        var reported = new ConcurrentQueue<string>();
        var ran = new ConcurrentQueue<string>();
        BoundedQueue<string>? queue = null;
        try
        {
            queue = new BoundedQueue<string>(10, store.Durability(), name, system: first);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(async (item, token) =>
            {
                ran.Enqueue(item);
                if (item == "long")
                {
                    // Runs on the cancelling (router's) thread, inside Settle: what the queue reads when the try is cancelled.
                    await using (token.UnsafeRegister(static state => ((Action)state!)(), (Action)(() => cancelled.TrySetResult(queue!.Status))))
                    {
                        running.TrySetResult();
                        await Task.Delay(Timeout.Infinite, token);
                    }
                }
            }, 1, (error, item) =>
            {
                reported.Enqueue($"{item}: {error.GetType().Name}");
                return Task.CompletedTask;
            }).WaitAsync(Bound);
            Assert.True(await queue.PutAsync("done").WaitAsync(Bound));
            Assert.True(await queue.PutAsync("long").WaitAsync(Bound));
            await running.Task.WaitAsync(Bound);
            await Poll.UntilAsync(() => queue.Metrics.Processed == 1, Bound, "\"done\" counted processed");

            var stop = queue.StopAsync(Timeout.InfiniteTimeSpan); // only the termination ends it
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
            await first.Terminate().WaitAsync(Bound);

            Assert.Equal(QueueStatus.Stopped, await cancelled.Task.WaitAsync(Bound));
            await stop.WaitAsync(Bound);
            Assert.Equal(QueueStatus.Stopped, queue.Status);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            await first.Terminate().WaitAsync(Bound);
        }

        var second = ActorQueueRuntime.Create("h202-settle-reopened");
        try
        {
            await using var reopened = new BoundedQueue<string>(10, store.Durability(), name, system: second);
            Assert.Equal(["long"], await reopened.DrainAsync().WaitAsync(Bound));
        }
        finally
        {
            await second.Terminate().WaitAsync(Bound);
        }

        Assert.Empty(reported);
        Assert.Equal(["done", "long"], ran.ToArray());
    }

    // ---- 1b1a7de: digits-only limiter/queue names are refused ----

    /// <summary>
    /// Names of ASCII digits only are refused in either section, leading zeros included ("007", "00": a plain number
    /// all the same, and the README says "any name of digits only"), with the key of the path the options were read
    /// from and an example of the section's own shape (a queue's, for Queues). Catches: a check only for the indices an
    /// array makes ("0", "1", … without leading zeros), a Limiters example in the Queues message, a hard-coded
    /// "ActorQueue" path.
    /// </summary>
    [Theory]
    [InlineData("Queues", "007")]
    [InlineData("Limiters", "00")]
    [InlineData("Queues", "0")]
    public void A_digits_only_name_is_refused_naming_its_key_under_any_section_path(string section, string name)
    {
        var options = new ActorQueueOptions { ConfigurationPath = "Jobs:Work" };
        if (section == "Queues")
        {
            options.Queues[name] = new QueueOptions();
        }
        else
        {
            options.Limiters[name] = new LimiterOptions();
        }

        var error = Assert.ThrowsAny<ArgumentException>(() => ActorQueueOptionsValidation.Check(options));

        Assert.Equal($"Jobs:Work:{section}:{name}", error.ParamName);
        Assert.Contains($"got '{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Jobs:Work:{section} is an object keyed by name, e.g. \"{section}\": ", error.Message, StringComparison.Ordinal);
        Assert.Contains(section == "Queues" ? "\"MaxSize\"" : "\"MaxRunning\"", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Names of non-ASCII digits only ("٣", Arabic-Indic three; "１２", full-width) are accepted, and found by the
    /// registry. Decided so because the rule exists for what configuration makes of a JSON array, whose indices are
    /// ASCII only; such a name is a deliberate word in its script, not an index. Catches a check written with
    /// <c>char.IsDigit</c> (Unicode Nd) instead of <c>char.IsAsciiDigit</c>.
    /// </summary>
    [Fact]
    public async Task Non_ASCII_digit_names_are_accepted_and_found()
    {
        var options = new ActorQueueOptions();
        options.Limiters["٣"] = new LimiterOptions { MaxRunning = 2 };
        options.Queues["１２"] = new QueueOptions { Limiter = "٣" };
        ActorQueueOptionsValidation.Check(options);

        await using var registry = new ActorQueueRegistry(Sys, options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(2, registry.GetLimiter("٣").MaxRunning);
        Assert.Equal("１２", registry.GetQueue<int>("１２").Queue.Name);
    }

    /// <summary>
    /// A queue whose <c>Limiter</c> names a plain number that is not configured fails with the queue's Limiter key (the
    /// reference is checked as any other: the digits rule is about names, and there is no limiter "0" to blame); the
    /// registry made in code refuses a digits-only limiter before making anything. Catches: the digits rule applied to
    /// the reference (a message about a name the user never wrote as one), a registry that skips the check.
    /// </summary>
    [Fact]
    public void A_numeric_limiter_reference_is_reported_as_missing_and_the_registry_refuses_a_numeric_limiter()
    {
        var referencing = new ActorQueueOptions();
        referencing.Queues["fetch"] = new QueueOptions { Limiter = "0" };
        var missing = Assert.ThrowsAny<ArgumentException>(() => ActorQueueOptionsValidation.Check(referencing));
        Assert.Equal("ActorQueue:Queues:fetch:Limiter", missing.ParamName);

        var numbered = new ActorQueueOptions();
        numbered.Limiters["42"] = new LimiterOptions();
        var refused = Assert.ThrowsAny<ArgumentException>(() => new ActorQueueRegistry(Sys, numbered, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
        Assert.Equal("ActorQueue:Limiters:42", refused.ParamName);
    }

    // ---- d45c09f: the batch's 'before' counts are taken once the queue has started ----

    /// <summary>
    /// An in-memory queue with history — the queue started, two items put, stopped without workers, the items drained —
    /// is restarted by the batch (its StartAsync on a stopped queue) and disposed once both items of the batch finished,
    /// before its join. Expected: the batch completes (every item of it finished, nothing drained under it). Catches an
    /// <c>EveryItemFinished</c> that compares with zeros or with counts taken before the history (the drain then reads
    /// as made under the batch: a false failure, ObjectDisposedException).
    /// </summary>
    [Fact]
    public async Task A_batch_restarting_a_stopped_queue_with_drained_history_completes_when_disposed_after_its_items()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, ConcurrencyLimit = 1 }, system: Sys);
        await queue.StartAsync().WaitAsync(Bound);
        Assert.True(await queue.Queue.PutAsync(100).WaitAsync(Bound));
        Assert.True(await queue.Queue.PutAsync(101).WaitAsync(Bound));
        await queue.StopAsync().WaitAsync(Bound);
        Assert.Equal([100, 101], await queue.DrainAsync().WaitAsync(Bound));

        await AssertBatchDisposedAfterItsItemsCompletesAsync(queue);
    }

    /// <summary>
    /// A durable queue reopened with a drained history, started (recovered) by its user before the batch, so the batch's
    /// StartAsync is a second one, and disposed once both items of the batch finished, before its join. Expected: the
    /// batch completes, the counts include the history. Catches counts taken from anything but the recovered queue.
    /// </summary>
    [Fact]
    public async Task A_batch_on_a_durable_queue_already_started_with_drained_history_completes_when_disposed_after_its_items()
    {
        using var store = new DurableStore(Sys);
        var name = DurableStore.UniqueName("h202-started-history");
        await using (var earlier = new BoundedQueue<int>(4, store.Durability(), name, system: Sys))
        {
            await earlier.StartAsync().WaitAsync(Bound);
            Assert.True(await earlier.PutAsync(100).WaitAsync(Bound));
            Assert.True(await earlier.PutAsync(101).WaitAsync(Bound));
            await earlier.StopAsync().WaitAsync(Bound);
            Assert.Equal([100, 101], await earlier.DrainAsync().WaitAsync(Bound));
        }

        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, ConcurrencyLimit = 1, Durability = store.Durability() }, system: Sys, name: name);
        await queue.StartAsync().WaitAsync(Bound);
        await AssertBatchDisposedAfterItsItemsCompletesAsync(queue);
    }

    /// <summary>
    /// Runs a batch of items 0 and 1 on <paramref name="queue"/> (whose history drained two items), disposing the queue
    /// once both have been processed, before the join: the batch completes, and the counts include the history.
    /// </summary>
    private async Task AssertBatchDisposedAfterItsItemsCompletesAsync(WorkQueue<int> queue)
    {
        var processed = new ConcurrentQueue<int>();
        var batch = queue.BatchProcessAsync(DisposingAtTheEnd(queue, processedCount: 2), item =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        });

        await BatchDisposalOutcome.AssertItemsOnlyAsync(queue, batch, null, processed, [0, 1], Bound);
        Assert.Equal((4L, 2L, 2L), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Metrics.Drained));
    }

    /// <summary>Items 0 and 1 (one chunk at capacity 2); the last <c>MoveNext</c> waits until the queue counts <paramref name="processedCount"/> processed, then disposes it.</summary>
    private ScriptedSequence DisposingAtTheEnd(WorkQueue<int> queue, int processedCount) => new(2, index =>
    {
        if (index == 2)
        {
            Poll.UntilAsync(() => queue.Metrics.Processed == processedCount, Bound, "the queue counted both items processed").GetAwaiter().GetResult();
            queue.Dispose();
        }
    });

    private static TaskCompletionSource Signal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
