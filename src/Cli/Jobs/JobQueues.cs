using ActorQueue.Actors;

namespace ActorQueue.Cli.Jobs;

/// <summary>How a job's handling ended, for the queue that carried it.</summary>
internal enum JobEnd
{
    /// <summary>Not finished (never started, killed by the runner, a bad line, or its output could not be written): a restart runs it.</summary>
    NotFinished,

    /// <summary>Its last attempt succeeded.</summary>
    Succeeded,

    /// <summary>Its last attempt failed, after its retries.</summary>
    Failed,
}

/// <summary>The queue a run's jobs go through between the reader and the workers: in memory, or durable (<c>--state</c>).</summary>
internal interface IJobQueue : IAsyncDisposable
{
    /// <summary>How many jobs wait in the queue.</summary>
    long Size { get; }

    /// <summary>The jobs an earlier run finished, which the reader skips; <c>null</c> when the queue keeps no state.</summary>
    IReadOnlySet<long>? Finished { get; }

    /// <summary>
    /// Whether workers take the jobs in the order they are put, once started: then a job a worker holds never waits
    /// for one that no worker may take (what --delay's input order relies on).
    /// </summary>
    bool InOrder { get; }

    /// <summary>Starts the queue and <paramref name="workers"/> workers, each running one job at a time with <paramref name="run"/>.</summary>
    /// <param name="run">Handles one job (a <see cref="Job"/> or <see cref="MalformedJob"/>) and says how it ended.</param>
    /// <param name="workers">How many jobs may be handled at once.</param>
    /// <param name="unexpected">Hears of anything that escaped <paramref name="run"/>, with the job.</param>
    Task StartAsync(Func<object, Task<JobEnd>> run, int workers, Func<Exception, object, Task> unexpected);

    /// <summary>Puts a job read, waiting for space until <paramref name="cancellationToken"/> fires.</summary>
    Task PutAsync(object item, CancellationToken cancellationToken);

    /// <summary>Waits until every job put has been handled.</summary>
    Task JoinAsync(CancellationToken cancellationToken);

    /// <summary>Stops the queue (running jobs finish) and takes back the jobs not started; returns how many there were.</summary>
    Task<int> StopAsync();
}

/// <summary>The run's jobs in a <see cref="BoundedQueue{T}"/> in memory: what a run without <c>--state</c> uses.</summary>
internal sealed class MemoryJobQueue(int capacity) : IJobQueue
{
    // One job per worker at a time (worker batch 1): jobs are long, and -j N means N jobs run at once, so a job must never
    // wait in a worker's run behind another job while a slot is free.
    private readonly BoundedQueue<object> _queue = new(capacity, Timeout.InfiniteTimeSpan, name: "jobs", workerBatch: 1);

    public long Size => _queue.Size;

    public IReadOnlySet<long>? Finished => null;

    /// <inheritdoc/>
    public bool InOrder => true;

    public async Task StartAsync(Func<object, Task<JobEnd>> run, int workers, Func<Exception, object, Task> unexpected)
    {
        await _queue.StartAsync();
        await _queue.StartWorkersAsync((item, _) => run(item), workers, unexpected);
    }

    public Task PutAsync(object item, CancellationToken cancellationToken) => _queue.PutAsync(item, Timeout.InfiniteTimeSpan, cancellationToken);

    public Task JoinAsync(CancellationToken cancellationToken) => _queue.JoinAsync(cancellationToken);

    public async Task<int> StopAsync()
    {
        await _queue.StopAsync(Timeout.InfiniteTimeSpan);
        return (await _queue.DrainAsync()).Count;
    }

    public ValueTask DisposeAsync() => _queue.DisposeAsync();
}
