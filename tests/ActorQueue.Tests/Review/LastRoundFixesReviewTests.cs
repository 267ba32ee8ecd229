using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 160) of three changes of the previous session: <c>OwnedActor</c>'s claim-and-message CAS, a
/// handler-less batch that ends early keeping its failures (<c>WorkQueue.Batch.cs</c>), and a durable queue's start sent
/// at once while it recovers. Every item a batch read from its sequence is counted: processed, reported to the error
/// handler with its reason, queued (drained or stored), or it is a defect.
/// </summary>
public sealed class LastRoundFixesReviewTests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A batch cancelled from inside its sequence (as item 3 is read) on a queue with room for 10: the documentation says
    /// a cancelled batch "reads no further item". Expected: the sequence is not read past item 3, and each of the four
    /// items read (none queued) goes to the error handler as cancelled. Failed before: the batch went on reading until
    /// its chunk of 10 was full, then put it, and the stop refused it ("read 10 items, 6 after the cancellation").
    /// </summary>
    [Fact]
    public async Task A_batch_cancelled_while_it_fills_a_chunk_reads_no_further_item()
    {
        await using var queue = new WorkQueue<int>(maxSize: 10, concurrencyLimit: 1, system: Sys, name: "h160-no-further-read");
        using var cancel = new CancellationTokenSource();
        var read = 0;
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();

        IEnumerable<int> Sequence()
        {
            for (var i = 0; i < 100; i++)
            {
                if (i == 3)
                {
                    cancel.Cancel();
                }

                Interlocked.Increment(ref read);
                yield return i;
            }
        }

        var batch = queue.BatchProcessAsync(Sequence(), (_, ct) => Task.Delay(Timeout.Infinite, ct), errorHandler: Collect(reported),
            cancellationToken: cancel.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        Assert.True(Volatile.Read(ref read) == 4, $"the batch read {Volatile.Read(ref read)} items, {Volatile.Read(ref read) - 4} after the cancellation");
        var left = await queue.DrainAsync(CancellationToken.None).WaitAsync(Bound);
        Assert.Empty(left);
        Assert.Equal([0, 1, 2, 3], reported.Select(r => r.Item));
        Assert.All(reported, r => Assert.IsAssignableFrom<OperationCanceledException>(r.Error));
    }

    /// <summary>
    /// A batch on a durable queue whose chunk the queue refuses for a reason other than its state: an item the journal
    /// cannot store (System.Text.Json fails on it). The router refuses the whole chunk (ArgumentException), so none of
    /// its three items is queued. Expected: each goes to the error handler with the refusal as its reason. Failed before:
    /// the handler heard of none ("reported: []"): only a stop's or a disposal's refusal (QueueStateException,
    /// ObjectDisposedException) was handed back, so the items read from the sequence were neither queued nor reported.
    /// </summary>
    [Fact]
    public async Task A_chunk_a_durable_queue_refuses_is_reported_item_by_item()
    {
        await using var queue = new WorkQueue<Job>(new QueueConfig { QueueCapacity = 10, Durability = QueueDurability.InMemory },
            system: Sys, name: DurableStore.UniqueName("h160-unstorable"));
        var reported = new ConcurrentQueue<(Exception Error, Job Item)>();
        Job[] items = [new(1), new(Job.Unstorable), new(3)];

        var batch = queue.BatchProcessAsync(items, (_, _) => Task.CompletedTask, errorHandler: Collect(reported));

        await Assert.ThrowsAnyAsync<ArgumentException>(() => batch.WaitAsync(Bound));
        Assert.True(reported.Select(r => r.Item.Number).SequenceEqual([1, Job.Unstorable, 3]),
            $"reported: [{string.Join(", ", reported.Select(r => r.Item.Number))}]");
        Assert.All(reported, r => Assert.IsAssignableFrom<ArgumentException>(r.Error));
        Assert.Equal(0, queue.Metrics.Enqueued);
    }

    /// <summary>
    /// A batch is cancelled while a chunk waits for space, and the queue is disposed in the same instant (the caller's
    /// own registration on the token, made after the batch's, runs first: a host shutting down cancels and disposes).
    /// The disposal's stop refuses the chunk's three items not admitted. Expected: of the 8 items read, the 5 queued are
    /// discarded by the disposal and the 3 refused are reported as not queued: 8 reports. Failed before: the batch's
    /// cancellation path stopped the queue again before reporting, which threw ObjectDisposedException: the 3 refused
    /// items reached no handler ("reported 5 of 8") and the batch threw ObjectDisposedException, not the cancellation.
    /// </summary>
    [Fact]
    public async Task A_batch_cancelled_as_its_queue_is_disposed_reports_the_items_the_disposal_refused()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h160-cancel-dispose");
        using var cancel = new CancellationTokenSource();
        var sequence = new CountedSequence(8);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();

        var batch = queue.BatchProcessAsync(sequence.Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1, errorHandler: Collect(reported),
            cancellationToken: cancel.Token);
        // 4 admitted (one taken by the worker), then 1 of the second chunk: its put has reached the router and waits with 3.
        await Poll.UntilAsync(() => queue.IsFull && sequence.Read == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {sequence.Read}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");
        await using (cancel.Token.UnsafeRegister(static state => ((WorkQueue<int>)state!).Dispose(), queue))
        {
            cancel.Cancel();
        }

        var error = await Assert.ThrowsAnyAsync<Exception>(() => batch.WaitAsync(Bound));
        await queue.DisposeAsync().AsTask().WaitAsync(Bound); // completes once the discarded items are reported
        await Poll.UntilAsync(() => reported.Count >= 8, Bound, () => $"reported {reported.Count} of 8 ({error.GetType().Name}: {error.Message})");
        Assert.Equal(Enumerable.Range(0, 8), reported.Select(r => r.Item).Order());
        Assert.IsAssignableFrom<OperationCanceledException>(error);
    }

    /// <summary>
    /// A batch put on a durable queue (capacity 3, item 100 stored) whose items are admitted in two writes: 1 and 2 into
    /// the write the journal holds, then 3 once a get takes 100 and frees space. The journal rejects the held write and
    /// accepts the next. <c>BatchProcessAsync</c> reads the batch's <see cref="BatchPut{T}.Admitted"/> as the count of its
    /// first items in the queue, and hands the rest back as not queued. Expected: the items in the queue are exactly the
    /// first Admitted ones (none: the refusal withdraws 3 before it is written). Failed before: 3 was written and stored
    /// while Admitted read 1, so the batch handed back 2 and 3 (3 was both queued and reported) and 1, refused, neither.
    /// </summary>
    [Fact]
    public async Task A_durable_batch_refused_after_a_split_admission_keeps_its_admitted_items_its_first_ones()
    {
        var system = Akka.Actor.ActorSystem.Create("h160-split", HeldOnceJournal.Config);
        try
        {
            var queue = new BoundedQueue<int>(3, HeldOnceJournal.Durability, DurableStore.UniqueName("h160-split"), system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(100).WaitAsync(Bound));
            var held = HeldOnceJournal.Arm();
            var batch = new BatchPut<int>([1, 2, 3]);
            var put = queue.PutBatchAsync(batch);
            await held.Arrived.Task.WaitAsync(Bound); // 1 and 2 are being written; 3 waits for space
            Assert.Equal(100, await queue.GetAsync().WaitAsync(Bound)); // 3 is admitted: it waits for the next write
            held.Release.SetResult();

            await Assert.ThrowsAsync<QueueStorageException>(() => put.WaitAsync(Bound));
            queue.TaskDone();
            await queue.StopAsync(TimeSpan.Zero).WaitAsync(Bound); // after the next write, if 3 was in one
            var queued = await queue.DrainAsync().WaitAsync(Bound);
            Assert.True(queued.SequenceEqual(batch.Items.Take(batch.Admitted)),
                $"in the queue: [{string.Join(", ", queued)}]; the batch's Admitted: {batch.Admitted}, so its caller hands back [{string.Join(", ", batch.Items.Skip(batch.Admitted))}]");
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Start, stop and start again, none awaited before the next, while the queue recovers (its replay held). Expected:
    /// the calls take effect in the order made, so the queue ends processing, and each completes. Passes (no defect):
    /// the router keeps the three in order and hands them back once recovered.
    /// </summary>
    [Fact]
    public async Task A_start_a_stop_and_a_start_made_while_recovering_take_effect_in_order()
    {
        await OnHeldJournal("h160-start-stop-start", async (system, name) =>
        {
            var replay = HeldOnceJournal.ArmReplay();
            await using var queue = new BoundedQueue<int>(10, HeldOnceJournal.Durability, name, system: system);
            await replay.Arrived.Task.WaitAsync(Bound);
            Task[] calls = [queue.StartAsync(), queue.StopAsync(TimeSpan.Zero), queue.StartAsync()];
            replay.Release.SetResult();

            await Task.WhenAll(calls).WaitAsync(Bound);
            Assert.Equal(QueueStatus.Processing, (await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound)).State);
            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
        });
    }

    /// <summary>
    /// The journal fails the replay of a queue whose start was called while it recovered; a start is called after the
    /// failure, then the queue is disposed. Expected: both starts fail with the recovery's
    /// <see cref="QueueStorageException"/> (README: "a journal that fails to recover fails StartAsync with it"), and the
    /// disposal completes. Passes (no defect).
    /// </summary>
    [Fact]
    public async Task Starts_around_a_failed_recovery_hear_that_it_failed()
    {
        await OnHeldJournal("h160-failed-recovery", async (system, name) =>
        {
            var queue = await FailedRecovery(system, name, during: queue => queue.StartAsync());

            await Assert.ThrowsAsync<QueueStorageException>(() => queue.During.WaitAsync(Bound));
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.Queue.StartAsync().WaitAsync(Bound));
            await queue.Queue.DisposeAsync().AsTask().WaitAsync(Bound);
        });
    }

    /// <summary>
    /// A put called after the journal failed a queue's recovery. Expected: it fails saying the queue could not recover
    /// (a <see cref="QueueStorageException"/>, as a put kept during that recovery does since df2033f), or that the queue is
    /// not processing. DEFECT (fixed): "ObjectDisposedException: The queue has been disposed", though nobody disposed it: the
    /// router stopped with the failed recovery (Akka stops it) and the facade still sent to it, whose dead letter answered
    /// as disposed. A get and a join are told the recovery's error too; once the queue is disposed, "disposed" again.
    /// </summary>
    [Fact]
    public async Task A_put_after_a_failed_recovery_is_not_told_the_queue_was_disposed()
    {
        await OnHeldJournal("h160-put-failed-recovery", async (system, name) =>
        {
            var queue = await FailedRecovery(system, name, during: queue => queue.StartAsync());
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.During.WaitAsync(Bound));

            var put = await Record.ExceptionAsync(() => queue.Queue.PutAsync(2).WaitAsync(Bound));
            Assert.True(put is QueueStorageException or QueueStateException, $"the put after a failed recovery: {put?.GetType().Name}: {put?.Message}");
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.Queue.GetAsync().WaitAsync(Bound));
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.Queue.JoinAsync().WaitAsync(Bound));
            await queue.Queue.DisposeAsync().AsTask().WaitAsync(Bound);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => queue.Queue.GetAsync());
        });
    }

    /// <summary>The queue <paramref name="name"/> opened on a replay that is held while <paramref name="during"/> is called, then fails.</summary>
    private async Task<(BoundedQueue<int> Queue, Task During)> FailedRecovery(ActorSystem system, string name, Func<BoundedQueue<int>, Task> during)
    {
        var replay = HeldOnceJournal.ArmReplay();
        replay.Fail = true;
        var queue = new BoundedQueue<int>(10, HeldOnceJournal.Durability, name, system: system);
        await replay.Arrived.Task.WaitAsync(Bound);
        var call = during(queue);
        replay.Release.SetResult();
        return (queue, call);
    }

    /// <summary>Runs <paramref name="test"/> on an actor system with <see cref="HeldOnceJournal"/>, with the name of a queue that holds item 1 (stored, then disposed).</summary>
    private async Task OnHeldJournal(string name, Func<Akka.Actor.ActorSystem, string, Task> test)
    {
        var system = Akka.Actor.ActorSystem.Create(name, HeldOnceJournal.Config);
        try
        {
            var queueName = DurableStore.UniqueName(name);
            await using (var first = new BoundedQueue<int>(10, HeldOnceJournal.Durability, queueName, system: system))
            {
                await first.StartAsync().WaitAsync(Bound);
                Assert.True(await first.PutAsync(1).WaitAsync(Bound));
            }

            await test(system, queueName);
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Two disposals (Stop) of one <c>OwnedActor</c> released together by a barrier on two dedicated threads, 200 times.
    /// Expected each time: both get the same message, not <c>null</c>, and the actor receives it once. Passes (no defect):
    /// the claim is the message's CAS.
    /// </summary>
    [Fact]
    public async Task Two_Stops_released_together_get_the_one_message_that_is_sent()
    {
        var actor = CreateTestProbe();
        for (var round = 0; round < 200; round++)
        {
            var owned = new ActorQueue.Runtime.OwnedActor<object>(actor.Ref, () => new object());
            using var barrier = new Barrier(2);
            var stops = new object?[2];
            var threads = Enumerable.Range(0, 2).Select(i => new Thread(() =>
            {
                barrier.SignalAndWait(Bound);
                stops[i] = owned.Stop();
            }) { IsBackground = true }).ToArray();
            Array.ForEach(threads, thread => thread.Start());
            Assert.True(threads.All(thread => thread.Join(Bound)), "a Stop did not return");

            Assert.NotNull(stops[0]);
            Assert.Same(stops[0], stops[1]);
            Assert.False(owned.TryClaim());
            Assert.Same(stops[0], await actor.ExpectMsgAsync<object>(Bound));
        }

        actor.Ref.Tell("marker", ActorRefs.NoSender);
        await actor.ExpectMsgAsync("marker", Bound); // nothing was sent twice
    }

    private static Func<Exception, TItem, Task> Collect<TItem>(ConcurrentQueue<(Exception Error, TItem Item)> reported) => (error, item) =>
    {
        reported.Enqueue((error, item));
        return Task.CompletedTask;
    };

    /// <summary>An item of a durable queue; <see cref="Unstorable"/> is one System.Text.Json cannot write.</summary>
    [JsonConverter(typeof(JobConverter))]
    public sealed record Job(int Number)
    {
        /// <summary>The number of a job whose serialisation throws.</summary>
        public const int Unstorable = -1;
    }

    /// <summary>Writes a <see cref="Job"/> as its number, and throws for <see cref="Job.Unstorable"/>.</summary>
    private sealed class JobConverter : JsonConverter<Job>
    {
        public override Job Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetInt32());

        public override void Write(Utf8JsonWriter writer, Job value, JsonSerializerOptions options)
        {
            if (value.Number == Job.Unstorable)
            {
                throw new NotSupportedException("this job cannot be written (review test)");
            }

            writer.WriteNumberValue(value.Number);
        }
    }
}

/// <summary>
/// Akka's in-memory journal whose first write after <see cref="Arm"/> is held until released, then rejected (each of
/// its AtomicWrites answered with an exception), the writes after it stored; and whose first replay after
/// <see cref="ArmReplay"/> is held until released, then fails if <see cref="Held.Fail"/> is set. Only
/// <see cref="LastRoundFixesReviewTests"/> uses it.
/// </summary>
public sealed class HeldOnceJournal : Akka.Persistence.Journal.MemoryJournal
{
    private static Held? s_armed;

    private static Held? s_replay;

    /// <summary>Queues that journal here (and snapshot in memory).</summary>
    public static QueueDurability Durability => new() { JournalPluginId = "h160-reject-once.journal", SnapshotPluginId = "akka.persistence.snapshot-store.inmem" };

    /// <summary>An actor system's configuration with this journal under <see cref="Durability"/>'s plugin id.</summary>
    public static Akka.Configuration.Config Config => Akka.Configuration.ConfigurationFactory
        .ParseString($"h160-reject-once.journal.class = \"{typeof(HeldOnceJournal).AssemblyQualifiedName}\"")
        .WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig);

    /// <summary>Holds the next write: <see cref="Held.Arrived"/> when it is here, rejected once <see cref="Held.Release"/> is set.</summary>
    public static Held Arm()
    {
        var held = new Held();
        Volatile.Write(ref s_armed, held);
        return held;
    }

    /// <summary>Holds the next replay (a queue opened, or restarted): <see cref="Held.Arrived"/> when it is here, going on once <see cref="Held.Release"/> is set.</summary>
    public static Held ArmReplay()
    {
        var held = new Held();
        Volatile.Write(ref s_replay, held);
        return held;
    }

    /// <inheritdoc />
    public override async Task ReplayMessagesAsync(Akka.Actor.IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
                                                   Action<Akka.Persistence.IPersistentRepresentation> recoveryCallback)
    {
        if (Interlocked.Exchange(ref s_replay, null) is { } held)
        {
            held.Arrived.SetResult();
            await held.Release.Task.ConfigureAwait(false);
            if (held.Fail)
            {
                throw new InvalidOperationException("the journal fails the replay (review test)");
            }
        }

        await base.ReplayMessagesAsync(context, persistenceId, fromSequenceNr, toSequenceNr, max, recoveryCallback).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task<System.Collections.Immutable.IImmutableList<Exception?>> WriteMessagesAsync(
        IEnumerable<Akka.Persistence.AtomicWrite> messages, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref s_armed, null) is not { } held)
        {
            return await base.WriteMessagesAsync(messages, cancellationToken).ConfigureAwait(false);
        }

        held.Arrived.SetResult();
        await held.Release.Task.ConfigureAwait(false);
        return [.. messages.Select(_ => (Exception?)new InvalidOperationException("the journal rejects this write (review test)"))];
    }

    /// <summary>A held write's signals.</summary>
    public sealed class Held
    {
        public TaskCompletionSource Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>A held replay fails once released.</summary>
        public bool Fail { get; set; }
    }
}
