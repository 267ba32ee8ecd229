using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// How a work queue's workers hold their limit: a queue's own limit that covers its workers is counted by the queue
/// itself (no gatekeeper per item) and still caps exactly, also after a shrink; a shared limiter's permit is held across
/// a worker's items only while nobody waits for it, and given back when the worker goes idle or stops.
/// </summary>
public class WorkQueueLimitTests : ActorQueueTestKit
{
    /// <summary>Worker calls that each wait on their own gate, counted while inside.</summary>
    private sealed class GatedCalls
    {
        private readonly TaskCompletionSource[] _gates;
        private int _inside;
        private int _max;
        private int _started;

        public GatedCalls(int items) =>
            _gates = Enumerable.Range(0, items).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();

        public int Inside => Volatile.Read(ref _inside);

        public int Max => Volatile.Read(ref _max);

        public int Started => Volatile.Read(ref _started);

        /// <summary>Resets the most seen at once (for a phase of the test).</summary>
        public void ResetMax() => Volatile.Write(ref _max, Inside);

        public void Open(int item) => _gates[item].TrySetResult();

        public void OpenAll()
        {
            foreach (var gate in _gates)
            {
                gate.TrySetResult();
            }
        }

        public async Task Work(int item, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            Poll.InterlockedMax(ref _max, Interlocked.Increment(ref _inside));
            try
            {
                await _gates[item].Task.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }
    }

    [Fact]
    public async Task A_queue_whose_own_limit_covers_its_workers_takes_no_permit_from_its_gatekeeper_per_call()
    {
        await using var queue = new WorkQueue<int>(concurrencyLimit: 3, system: Sys);
        var calls = new GatedCalls(3);
        await queue.StartAsync();
        await queue.ProcessAsync(calls.Work);
        for (var i = 0; i < 3; i++)
        {
            await queue.PutAsync(i);
        }

        await Eventually(() => calls.Inside == 3, "three calls run");
        Assert.Equal(0, queue.Limiter!.RunningCount);
        calls.OpenAll();
        await Within(queue.JoinAsync());
        Assert.Equal(3, queue.Metrics.Processed);
    }

    [Fact]
    public async Task Shrinking_a_queues_own_limit_below_its_workers_caps_the_calls_that_start_after_it()
    {
        await using var queue = new WorkQueue<int>(concurrencyLimit: 3, system: Sys);
        var calls = new GatedCalls(9);
        await queue.StartAsync();
        await queue.ProcessAsync(calls.Work);
        for (var i = 0; i < 3; i++)
        {
            await queue.PutAsync(i);
        }

        await Eventually(() => calls.Inside == 3, "three calls run under the first limit");
        queue.Limiter!.Resize(maxRunning: 1);
        for (var i = 3; i < 9; i++)
        {
            await queue.PutAsync(i);
        }

        for (var i = 0; i < 3; i++)
        {
            calls.Open(i);
        }

        await Eventually(() => calls.Started >= 4 && calls.Inside == 1, "the calls in hand finished and one new call runs");
        calls.ResetMax();
        for (var i = 3; i < 9; i++)
        {
            calls.Open(i);
        }

        await Within(queue.JoinAsync());
        Assert.Equal(1, calls.Max);
        Assert.Equal(9, queue.Metrics.Processed);
    }

    [Fact]
    public async Task A_worker_holding_a_shared_permit_across_items_lets_a_waiter_in_after_its_current_item()
    {
        using var shared = new ConcurrencyLimiter(1, name: "shared", system: Sys);
        await using var queue = new WorkQueue<int>(100, null, shared, system: Sys);
        var calls = new GatedCalls(5);
        await queue.StartAsync();
        for (var i = 0; i < 5; i++)
        {
            await queue.PutAsync(i);
        }

        await queue.ProcessAsync(calls.Work, numWorkers: 1); // the worker takes all five items as one run

        await Eventually(() => calls.Inside == 1, "the worker runs its first item");
        var waiter = shared.AcquireAsync("outsider").AsTask();
        await Eventually(() => shared.WaitingCount == 1, "the outsider waits");
        calls.Open(0);

        using (await Within(waiter))
        {
            Assert.Equal(1, calls.Started); // the worker let go before its next item, and waits behind the outsider
        }

        calls.OpenAll();
        await Within(queue.JoinAsync());
        Assert.Equal(5, queue.Metrics.Processed);
    }

    [Fact]
    public async Task Shrinking_a_shared_limiter_caps_the_calls_that_start_after_it_even_with_nobody_waiting()
    {
        using var shared = new ConcurrencyLimiter(2, name: "shared", system: Sys);
        await using var queue = new WorkQueue<int>(100, null, shared, system: Sys);
        var calls = new GatedCalls(8);
        await queue.StartAsync();
        for (var i = 0; i < 8; i++)
        {
            await queue.PutAsync(i);
        }

        await queue.ProcessAsync(calls.Work, numWorkers: 2); // each worker takes four items as one run
        await Eventually(() => calls.Inside == 2, "both workers run their first item");
        shared.Resize(maxRunning: 1);
        await Eventually(() => shared.MaxRunning == 1, "the shrink is published");
        calls.Open(0);
        calls.Open(4);

        await Eventually(() => calls.Started >= 3 && calls.Inside == 1, "the first items finished and one new call runs");
        calls.ResetMax();
        calls.OpenAll();
        await Within(queue.JoinAsync());
        Assert.Equal(1, calls.Max);
        Assert.Equal(8, queue.Metrics.Processed);
    }

    [Fact]
    public async Task Idle_workers_give_their_shared_permits_back()
    {
        using var shared = new ConcurrencyLimiter(2, name: "shared", system: Sys);
        await using var queue = new WorkQueue<int>(100, null, shared, system: Sys);
        await queue.StartAsync();
        await queue.ProcessAsync(_ => Task.CompletedTask, numWorkers: 2);
        for (var i = 0; i < 20; i++)
        {
            await queue.PutAsync(i);
        }

        await Within(queue.JoinAsync());

        await Eventually(() => shared.RunningCount == 0, "no idle worker holds a permit");
        using var lease = await Within(shared.AcquireAsync(permits: 2).AsTask());
    }

    [Fact]
    public async Task A_worker_actor_that_crashes_while_holding_a_shared_permit_gives_it_back_and_its_successor_runs_on()
    {
        using var shared = new ConcurrencyLimiter(1, name: "shared", system: Sys);
        await using var queue = new WorkQueue<int>(100, null, shared, system: Sys);
        var calls = new GatedCalls(2);
        await queue.StartAsync();
        await queue.ProcessAsync(calls.Work, numWorkers: 1);
        await queue.PutAsync(0);
        await Eventually(() => calls.Inside == 1 && shared.RunningCount == 1, "the worker holds the only permit in its call");
        var worker = await Sys.ActorSelection(queue.Router.Path / "worker-*").ResolveOne(Dilated(TimeSpan.FromSeconds(10)));

        worker.Tell(Kill.Instance); // the crash cancels the call; the task ends without reporting, through its crash path

        await Eventually(() => calls.Inside == 0 && shared.RunningCount == 0, "the crashed task gave its permit back");
        calls.Open(1);
        await queue.PutAsync(1);
        await Within(queue.JoinAsync()); // with the permit kept, the restarted worker would wait for it for ever
        Assert.Equal(2, calls.Started);
        Assert.Equal(0, shared.RunningCount);
    }

    [Fact]
    public async Task A_stop_cancelling_held_calls_gives_every_permit_back_and_a_restart_processes_every_item()
    {
        using var shared = new ConcurrencyLimiter(2, name: "shared", system: Sys);
        await using var sharing = new WorkQueue<int>(100, null, shared, system: Sys);
        await using var own = new WorkQueue<int>(concurrencyLimit: 2, system: Sys);
        foreach (var queue in new[] { sharing, own })
        {
            var calls = new GatedCalls(6);
            await queue.StartAsync();
            await queue.ProcessAsync(calls.Work, numWorkers: 2);
            for (var i = 0; i < 6; i++)
            {
                await queue.PutAsync(i);
            }

            await Eventually(() => calls.Inside == 2, "two calls run");
            await Within(queue.StopAsync(TimeSpan.Zero));
            Assert.Equal(6, queue.Size + queue.Metrics.Processed);

            calls.OpenAll();
            await queue.StartAsync();
            await Within(queue.JoinAsync());
            Assert.Equal(6, queue.Metrics.Processed);
        }

        await Eventually(() => shared.RunningCount == 0, "every permit came back");
    }

    [Fact]
    public async Task New_workers_above_the_own_limit_wait_for_the_calls_of_the_workers_they_replace()
    {
        await using var queue = new WorkQueue<int>(concurrencyLimit: 2, system: Sys);
        var calls = new GatedCalls(6);
        await queue.StartAsync();
        await queue.ProcessAsync(calls.Work); // two workers: counted by the queue alone
        await queue.PutAsync(0);
        await queue.PutAsync(1);
        await Eventually(() => calls.Inside == 2, "the first workers run two calls");

        await queue.ProcessAsync(calls.Work, numWorkers: 4); // four workers: through the gatekeeper, inside the same count
        for (var i = 2; i < 6; i++)
        {
            await queue.PutAsync(i);
        }

        await Eventually(() => queue.Limiter!.WaitingCount == 2, "two new workers hold permits and two wait for them");
        calls.Open(0);
        calls.Open(1);
        await Eventually(() => calls.Started == 4, "two new calls started once the old ones finished");
        calls.OpenAll();
        await Within(queue.JoinAsync());

        Assert.Equal(2, calls.Max);
        Assert.Equal(6, queue.Metrics.Processed);
    }
}
