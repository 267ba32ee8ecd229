using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 43 (helper 199): the durable router's <c>Settle</c> (its PostStop, and a disposal that stops waiting for its
/// journal) completed the stops waiting before it set and published <see cref="QueueStatus.Stopped"/>, so a caller whose
/// stop had completed could read the old status (<see cref="QueueStatus.Stopping"/>). The in-memory router had the same
/// order in its PostStop (Review/HostingStopRound42Tests, helper 196).
/// </summary>
public sealed class DurableStopStatusRound43Tests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30); // a hang guard only

    /// <summary>
    /// A durable queue stops (with no timeout, so only the end of the actor system ends the stop) while a worker holds an
    /// item, and the actor system terminates: the router's PostStop answers the stops. The interleaving is forced: the
    /// worker's token, cancelled by the router as it settles (right after it completed the stops), reads the queue's status
    /// and whether a stop it holds (sent to the router as the facade does) has completed. From the moment a stop has
    /// completed, the queue reads Stopped; the facade's StopAsync completes, and the queue then reads Stopped.
    /// Failed before: at that moment the stop had completed and the queue read Stopping
    /// ("Expected: Stopped, Actual: Stopping"): Settle completed the stops first, and set and published Stopped after.
    /// </summary>
    [Fact]
    public async Task A_durable_stop_that_the_actor_system_ends_has_completed_only_once_the_queue_reads_Stopped()
    {
        var system = ActorQueueRuntime.Create("h199-durable-stop-status");
        using var store = new DurableStore(system);
        var worker = new ObservingWorker();
        try
        {
            var queue = new BoundedQueue<string>(10, store.Durability(), DurableStore.UniqueName("h199-stop-status"), system: system);
            worker.Queue = queue;
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync(worker.Run, numWorkers: 1).WaitAsync(Bound);
            Assert.True(await queue.PutAsync("long").WaitAsync(Bound));
            await worker.Running.WaitAsync(Bound);

            var stop = queue.StopAsync(Timeout.InfiniteTimeSpan); // only the termination ends it
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
            var observed = new StopQueue(Timeout.InfiniteTimeSpan, terminate: false); // a second stop, whose completion the worker sees
            worker.Stop = observed;
            queue.Router.Tell(observed, ActorRefs.NoSender);
            var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance).WaitAsync(Bound); // after the stop, in the mailbox
            Assert.Equal(QueueStatus.Stopping, status.State);

            await system.Terminate().WaitAsync(Bound);

            var seen = await worker.Seen.WaitAsync(Bound);
            Assert.True(seen.StopCompleted, "the stop had completed when the router cancelled the worker's token (the test's point of observation)");
            Assert.Equal(QueueStatus.Stopped, seen.Status); // failed: Stopping
            await observed.Completion.Task.WaitAsync(Bound);
            await stop.WaitAsync(Bound);
            Assert.Equal(QueueStatus.Stopped, queue.Status);
            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        }
        finally
        {
            worker.Release();
            await system.Terminate().WaitAsync(Bound);
        }
    }

    /// <summary>
    /// A worker that holds its item until the test releases it; when its token is cancelled it reads, on the cancelling
    /// (router's) thread, whether <see cref="Stop"/> has completed and the queue's status.
    /// </summary>
    private sealed class ObservingWorker
    {
        private readonly TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<(bool StopCompleted, QueueStatus Status)> _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public BoundedQueue<string>? Queue { get; set; }

        public StopQueue? Stop { get; set; }

        /// <summary>Completes when the worker holds its item.</summary>
        public Task Running => _running.Task;

        /// <summary>What the worker saw when its token was cancelled.</summary>
        public Task<(bool StopCompleted, QueueStatus Status)> Seen => _seen.Task;

        public void Release() => _released.TrySetResult();

        public async Task Run(string item, CancellationToken token)
        {
            await using (token.UnsafeRegister(static state => ((ObservingWorker)state!).Observe(), this))
            {
                _running.TrySetResult();
                await _released.Task;
            }

            throw new OperationCanceledException($"{item}: cancelled", token);
        }

        private void Observe() =>
            _seen.TrySetResult((Stop?.Completion.Task.IsCompleted ?? false, Queue?.Status ?? QueueStatus.Idle));
    }
}
