using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Queues;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 44 (helper 203): the queue routers when the actor system ends without the queue being stopped or disposed first.
/// A durable queue's tries in flight at that moment never reported back, so it read <c>InFlight &gt; 0</c> with
/// <see cref="QueueStatus.Stopped"/> for good; and both routers refused their waiting puts and failed their joins before
/// they published <see cref="QueueStatus.Stopped"/>, so a caller whose put was refused (or whose join failed) could read
/// the old status. The interleavings are forced without timing: the refused put's sender is an actor ref whose
/// <c>Tell</c> runs on the router's thread, and a meter listener runs on it as the router records its end.
/// </summary>
public sealed class RouterSystemEndRound44Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30); // a hang guard only

    /// <summary>
    /// A durable queue processes an item (its worker holds it, ignoring nothing: it ends when its token is cancelled) and
    /// a getter holds another, and the actor system terminates. Both items have no end in the journal and run again when
    /// the queue is opened again: they are handed back to the journal, and the counters say so (queued, not in flight).
    /// Failed before: the queue read Stopped with <c>InFlight</c> 2 and <c>Size</c> 0 for good ("Expected: (0, 2), Actual: (2, 0)").
    /// </summary>
    [Fact]
    public async Task A_durable_queue_whose_actor_system_ends_counts_its_items_in_flight_as_queued_again()
    {
        var system = ActorQueueRuntime.Create("h203-durable-inflight");
        using var store = new DurableStore(system);
        var worker = new HeldWorker();
        try
        {
            var queue = new BoundedQueue<string>(10, store.Durability(), DurableStore.UniqueName("h203-inflight"), system: system);
            await HoldTwoAsync(queue, worker, errorHandler: null);

            await system.Terminate().WaitAsync(Bound);

            Assert.Equal(QueueStatus.Stopped, queue.Status);
            var metrics = queue.Metrics;
            Assert.Equal((0, 2), (metrics.InFlight, queue.Size)); // failed: (2, 0)
            Assert.Equal((2, 0, 0), (metrics.Enqueued, metrics.Processed, metrics.Discarded));
            Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            Assert.Equal(0, queue.Metrics.InFlight);
        }
        finally
        {
            worker.Release();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A queue in memory whose worker holds an item and whose getter holds another when the actor system terminates: the
    /// queue can no longer count the getter's <c>TaskDone</c>, so that item is accounted for as discarded and reported to
    /// the error handler (as the worker's item is), and nothing reads in flight once the queue reads Stopped.
    /// Failed before: the queue read Stopped with <c>InFlight</c> 1 for good, and the getter's item was never reported
    /// ("Expected: (0, 2), Actual: (1, 1)").
    /// </summary>
    [Fact]
    public async Task A_queue_in_memory_whose_actor_system_ends_under_a_getters_item_counts_it_discarded()
    {
        var system = ActorQueueRuntime.Create("h203-memory-getter");
        var worker = new HeldWorker();
        var reported = new ConcurrentQueue<(Exception Error, string Item)>();
        try
        {
            var queue = new BoundedQueue<string>(10, system: system, name: DurableStore.UniqueName("h203-getter"), workerBatch: 1);
            await HoldTwoAsync(queue, worker, (error, item) =>
            {
                reported.Enqueue((error, item));
                return Task.CompletedTask;
            });

            await system.Terminate().WaitAsync(Bound);

            Assert.Equal(QueueStatus.Stopped, queue.Status);
            var metrics = queue.Metrics;
            Assert.Equal((0, 2), (metrics.InFlight, metrics.Discarded)); // failed: (1, 1)
            Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
            await Poll.UntilAsync(() => reported.Count == 2, Bound, "both items are reported");
            Assert.Equal(["taken", "worked"], reported.Select(report => report.Item).Order());
            Assert.All(reported, report => Assert.IsType<ObjectDisposedException>(report.Error));
        }
        finally
        {
            worker.Release();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A full queue (in memory, or durable) with an actor's put waiting for space, and the actor system terminates: the
    /// put is refused as <see cref="QueueStatus.Stopped"/>, and the refusal's sender, told on the router's thread, reads
    /// the queue's status at that moment. It reads Stopped.
    /// Failed before: it read Processing ("Expected: Stopped, Actual: Processing"): the routers refused the waiting puts
    /// first, and published Stopped after.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_put_the_end_of_the_actor_system_refuses_reads_the_queue_Stopped(bool durable)
    {
        var system = ActorQueueRuntime.Create($"h203-refused-{(durable ? "durable" : "memory")}");
        using var store = new DurableStore(system);
        try
        {
            var name = DurableStore.UniqueName("h203-refused");
            var queue = durable ? new BoundedQueue<string>(1, store.Durability(), name, system: system) : new BoundedQueue<string>(1, system: system, name: name);
            var (sender, seen) = await WaitingPutAsync(queue, 7);

            await system.Terminate().WaitAsync(Bound);

            Assert.True(await sender.Arrived.WaitAsync(Bound), "the put is answered");
            var refused = Assert.IsType<QueueProtocol.RejectedState>(Assert.Single(sender.Messages));
            Assert.Equal((7, QueueStatus.Stopped), (refused.CorrelationId, refused.Status));
            Assert.Equal(QueueStatus.Stopped, Assert.Single(seen)); // failed: Processing
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// The same refusal by a stop (no actor system's end): a full queue in memory with an actor's put waiting for space is
    /// stopped; the put is refused as <see cref="QueueStatus.Stopping"/>, and its sender, told on the router's thread, reads
    /// the queue as stopping (or stopped) at that moment, as with a durable queue.
    /// Failed before: it read Processing ("read Processing"): the in-memory router moved to
    /// Stopping, refused the waiting puts, and published the new status only after.
    /// </summary>
    [Fact]
    public async Task A_put_a_stop_refuses_reads_the_queue_stopping()
    {
        var system = ActorQueueRuntime.Create("h203-refused-by-stop");
        try
        {
            var queue = new BoundedQueue<string>(1, system: system, name: DurableStore.UniqueName("h203-refused-stop"));
            var (sender, seen) = await WaitingPutAsync(queue, 8);

            await queue.StopAsync().WaitAsync(Bound);

            var refused = Assert.IsType<QueueProtocol.RejectedState>(Assert.Single(sender.Messages));
            Assert.Equal((8, QueueStatus.Stopping), (refused.CorrelationId, refused.Status));
            var read = Assert.Single(seen);
            Assert.True(read is QueueStatus.Stopping or QueueStatus.Stopped, $"read {read}"); // failed: Processing
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A queue in memory whose worker holds an item, with a join waiting for it, and the actor system terminates: the join
    /// fails. A meter listener reads, on the router's thread, at each measurement the router records for the queue as it
    /// ends, whether the join has failed and the queue's status: from the moment the join has failed, the queue reads
    /// Stopped (and the listener sees at least one measurement after it: the discarded item's).
    /// Failed before: a measurement after the join had failed read Processing ("Expected: Stopped, Actual: Processing"):
    /// the router failed the joins first, then settled the workers' runs (a measurement), and published Stopped after.
    /// </summary>
    [Fact]
    public async Task A_join_the_end_of_the_actor_system_fails_reads_the_queue_Stopped()
    {
        var system = ActorQueueRuntime.Create("h203-join-memory");
        var worker = new HeldWorker();
        var name = DurableStore.UniqueName("h203-join");
        BoundedQueue<string>? queue = null;
        JoinQueue? join = null;
        var seen = new ConcurrentQueue<QueueStatus>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        void Measured(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == ActorQueueTelemetry.QueueNameTag && Equals(tag.Value, name) && join?.Completion.Task.IsCompleted == true)
                {
                    seen.Enqueue(queue!.Status);
                }
            }
        }

        listener.SetMeasurementEventCallback<int>((_, _, tags, _) => Measured(tags));
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) => Measured(tags));
        listener.SetMeasurementEventCallback<double>((_, _, tags, _) => Measured(tags));
        listener.Start();
        try
        {
            queue = new BoundedQueue<string>(10, system: system, name: name);
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(worker.Run, numWorkers: 1, errorHandler: (_, _) => Task.CompletedTask).WaitAsync(Bound);
            Assert.True(await queue.PutAsync("long").WaitAsync(Bound));
            await worker.Running.WaitAsync(Bound);
            join = new JoinQueue();
            queue.Router.Tell(join, ActorRefs.NoSender);
            var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound); // after the join, in the mailbox
            Assert.Equal(QueueStatus.Processing, status.State);
            Assert.False(join.Completion.Task.IsCompleted);

            await system.Terminate().WaitAsync(Bound);

            await Assert.ThrowsAnyAsync<Exception>(() => join.Completion.Task.WaitAsync(Bound));
            Assert.NotEmpty(seen);
            Assert.All(seen, status => Assert.Equal(QueueStatus.Stopped, status)); // failed: Processing
            Assert.Equal(QueueStatus.Stopped, queue.Status);
        }
        finally
        {
            worker.Release();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>Starts <paramref name="queue"/> with one worker, which holds "worked", and a getter takes "taken": two items in flight.</summary>
    private static async Task HoldTwoAsync(BoundedQueue<string> queue, HeldWorker worker, Func<Exception, string, Task>? errorHandler)
    {
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync(worker.Run, numWorkers: 1, errorHandler).WaitAsync(Bound);
        Assert.True(await queue.PutAsync("worked").WaitAsync(Bound));
        await worker.Running.WaitAsync(Bound);
        Assert.True(await queue.PutAsync("taken").WaitAsync(Bound));
        Assert.Equal("taken", await queue.GetAsync().WaitAsync(Bound));
        Assert.Equal(2, queue.Metrics.InFlight);
    }

    /// <summary>
    /// Starts <paramref name="queue"/> (of one place), fills it, and sends it an actor's put that waits for space; the put's
    /// sender records, on the thread that refuses the put (the router's), the queue's status at that moment.
    /// </summary>
    private static async Task<(MailboxRef Sender, ConcurrentQueue<QueueStatus> Seen)> WaitingPutAsync(BoundedQueue<string> queue, long correlationId)
    {
        var seen = new ConcurrentQueue<QueueStatus>();
        var sender = new MailboxRef($"h203-producer-{correlationId}")
        {
            OnTold = message =>
            {
                if (message is QueueProtocol.RejectedState)
                {
                    seen.Enqueue(queue.Status);
                }
            },
        };
        await queue.StartAsync().WaitAsync(Bound);
        Assert.True(await queue.PutAsync("first").WaitAsync(Bound));
        queue.Router.Tell(new QueueProtocol.Put("second", correlationId, Timeout.InfiniteTimeSpan), sender);
        var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound); // after the put, in the mailbox
        Assert.Equal((QueueStatus.Processing, 1, 0), (status.State, status.Size, sender.Told)); // the put waits for space
        return (sender, seen);
    }

    /// <summary>A worker that holds its item until its token is cancelled or the test releases it.</summary>
    private sealed class HeldWorker
    {
        private readonly TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Running => _running.Task;

        public void Release() => _released.TrySetResult();

        public async Task Run(string item, CancellationToken token)
        {
            _running.TrySetResult();
            await _released.Task.WaitAsync(token);
        }
    }
}
