using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

public class WorkQueueTests : ActorQueueTestKit
{
    /// <summary>Counts calls inside a worker and the most seen at once; calls block on a gate until released.</summary>
    private sealed class ConcurrencyProbe
    {
        private int _inside;
        private int _max;

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Inside => Volatile.Read(ref _inside);

        public int Max => Volatile.Read(ref _max);

        /// <summary>A worker call; it honours the token, so a failed test's dispose cancels it instead of hanging.</summary>
        public async Task Work(int item, CancellationToken cancellationToken)
        {
            Poll.InterlockedMax(ref _max, Interlocked.Increment(ref _inside));

            try
            {
                await Gate.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }
    }

    [Fact]
    public async Task Work_queue_delegates_its_state_to_the_underlying_queue()
    {
        await using var queue = new WorkQueue<int>(maxSize: 3, concurrencyLimit: 2, system: Sys);

        Assert.Equal(QueueStatus.Idle, queue.Status);
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1));
        Assert.Equal((1, false, false), (queue.Size, queue.IsEmpty, queue.IsFull));
        Assert.Equal(queue.Queue.Router, queue.Router);
        Assert.Equal(2, queue.ConcurrencyLimit);
        Assert.Equal(1, queue.Metrics.Enqueued);
    }

    [Fact]
    public async Task The_concurrency_limit_really_caps_worker_calls_even_with_more_workers()
    {
        await using var queue = new WorkQueue<int>(concurrencyLimit: 2, system: Sys);
        var probe = new ConcurrencyProbe();
        await queue.StartAsync();
        await queue.ProcessAsync(probe.Work, numWorkers: 5);
        for (var i = 0; i < 5; i++)
        {
            await queue.PutAsync(i);
        }

        await Eventually(() => probe.Inside == 2 && queue.Limiter!.WaitingCount == 3, "two calls run and three workers wait for a slot");
        probe.Gate.SetResult();
        await Within(queue.JoinAsync());

        Assert.Equal(2, probe.Max);
        Assert.Equal(5, queue.Metrics.Processed);
    }

    [Fact]
    public async Task The_worker_count_defaults_to_the_concurrency_limit_then_to_one()
    {
        await using var limited = new WorkQueue<int>(concurrencyLimit: 3, system: Sys);
        await using var plain = new WorkQueue<int>(system: Sys);

        await limited.ProcessAsync(_ => Task.CompletedTask);
        await plain.ProcessAsync(_ => Task.CompletedTask);

        Assert.Equal(3, limited.Queue.WorkerCount);
        Assert.Equal(1, plain.Queue.WorkerCount);
    }

    [Fact]
    public async Task Two_queues_sharing_one_limiter_never_exceed_it_together()
    {
        using var shared = new ConcurrencyLimiter(3, name: "shared", system: Sys);
        await using var first = new WorkQueue<int>(100, null, shared, system: Sys);
        await using var second = new WorkQueue<int>(100, null, shared, system: Sys);
        var probe = new ConcurrencyProbe();
        foreach (var queue in new[] { first, second })
        {
            await queue.StartAsync();
            await queue.ProcessAsync(probe.Work, numWorkers: 4);
            for (var i = 0; i < 4; i++)
            {
                await queue.PutAsync(i);
            }
        }

        await Eventually(() => probe.Inside == 3 && shared.WaitingCount == 5, "three of eight calls run");
        probe.Gate.SetResult();
        await Within(Task.WhenAll(first.JoinAsync(), second.JoinAsync()));

        Assert.Equal(3, probe.Max);
        Assert.Equal(8, first.Metrics.Processed + second.Metrics.Processed);
        await Eventually(() => shared.RunningCount == 0, "every slot came back");
    }

    [Fact]
    public async Task Batch_process_handles_every_item_and_the_same_queue_runs_a_second_batch()
    {
        await using var queue = new WorkQueue<int>(maxSize: 5, concurrencyLimit: 3, system: Sys);
        var seen = new ConcurrentBag<int>();

        await Within(queue.BatchProcessAsync(Enumerable.Range(0, 50), async item =>
        {
            await Task.Yield();
            seen.Add(item);
        }));
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        await Within(queue.BatchProcessAsync(Enumerable.Range(50, 30), item =>
        {
            seen.Add(item);
            return Task.CompletedTask;
        }));

        Assert.Equal(Enumerable.Range(0, 80), seen.Order());
        Assert.Equal(new QueueMetrics(80, 80, 0, 0), queue.Metrics);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
    }

    [Fact]
    public async Task Batch_process_reads_a_lazy_sequence_only_as_space_frees_up()
    {
        await using var queue = new WorkQueue<int>(maxSize: 10, system: Sys);
        var produced = 0;
        var processed = 0;
        var maxAhead = 0;

        IEnumerable<int> Items()
        {
            for (var i = 0; i < 500; i++)
            {
                maxAhead = Math.Max(maxAhead, Interlocked.Increment(ref produced) - Volatile.Read(ref processed));
                yield return i;
            }
        }

        await Within(queue.BatchProcessAsync(Items(), async _ =>
        {
            await Task.Yield();
            Interlocked.Increment(ref processed);
        }, numWorkers: 2));

        Assert.Equal(500, processed);
        // At most: the queue's 10, the workers' hands (each takes at most its share of a full queue: 10 in all),
        // and one chunk (10) being read.
        Assert.True(maxAhead <= 10 + 10 + 10 + 1, $"read at most one chunk ahead of the queue, saw {maxAhead}");
        Assert.Equal(new QueueMetrics(500, 500, 0, 0), queue.Metrics);
    }

    [Fact]
    public async Task Batch_process_reports_failures_to_the_error_handler()
    {
        await using var queue = new WorkQueue<int>(maxSize: 2, system: Sys);
        var failed = new ConcurrentBag<int>();

        await queue.BatchProcessAsync(Enumerable.Range(0, 10), item => item < 3 ? throw new InvalidOperationException() : Task.CompletedTask,
            errorHandler: (_, item) =>
            {
                failed.Add(item);
                return Task.CompletedTask;
            });

        Assert.Equal([0, 1, 2], failed.Order());
        Assert.Equal(new QueueMetrics(10, 10, 3, 0), queue.Metrics);
    }

    [Fact]
    public async Task A_queue_config_sets_capacity_and_concurrency()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, ConcurrencyLimit = 4 }, system: Sys);

        Assert.Equal(2, queue.Queue.Capacity);
        Assert.Equal(4, queue.ConcurrencyLimit);
        Assert.Equal(4, queue.Limiter!.MaxRunning);
    }

    [Fact]
    public void Bad_arguments_name_the_parameter_and_the_value()
    {
        var limit = Assert.Throws<ArgumentOutOfRangeException>(() => new WorkQueue<int>(concurrencyLimit: 0, system: Sys));
        Assert.Equal("concurrencyLimit", limit.ParamName);
        Assert.Contains("got 0", limit.Message);
        Assert.Equal("limiter", Assert.Throws<ArgumentNullException>(() => new WorkQueue<int>(1, null, (IConcurrencyLimiter)null!, system: Sys)).ParamName);
        Assert.Equal("config", Assert.Throws<ArgumentNullException>(() => new WorkQueue<int>((QueueConfig)null!, system: Sys)).ParamName);
    }
}
