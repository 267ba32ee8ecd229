using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Cli.Jobs;

/// <summary>A job in the durable queue: its sequence number, and its command line for <c>dead-letters list</c>.</summary>
/// <param name="Seq">The job's sequence number ({#}).</param>
/// <param name="Command">Its command line as read.</param>
internal sealed record QueuedJob(long Seq, string Command);

/// <summary>A job's last attempt failed: the durable queue makes it a dead letter.</summary>
internal sealed class JobFailedException(string message) : Exception(message);

/// <summary>
/// <c>--state FILE</c>: the run's jobs go through a durable <see cref="BoundedQueue{T}"/> journaled in the SQLite file,
/// next to the <see cref="RunState"/> table that records each job read and each job finished. The input is the jobs'
/// source on every start, the state says which of them finished: a restart skips those and runs the others, so a
/// runner killed with SIGKILL finishes its jobs as <c>--resume</c> would, without the joblog. A job whose last attempt
/// failed becomes a dead letter (the queue tries each job once; <c>--retries</c> retries happen inside that try).
/// </summary>
/// <remarks>
/// The queue recovers the jobs it held at the kill. Those copies are only carriers: a worker runs a job only for the
/// copy that finds it among the jobs this run has read (<see cref="_read"/>), so a recovered copy and the reader's new
/// copy of one job never both run it. A recovered copy of a job the state records as failed, whose dead-lettering the
/// kill cut short, fails again without running, so the dead letter is not lost.
/// </remarks>
internal sealed class DurableJobQueue : IJobQueue
{
    /// <summary>The durable queue's name in the state file.</summary>
    public const string QueueName = "jobs";

    private readonly RunState _state;
    private readonly BoundedQueue<QueuedJob> _queue;

    /// <summary>The jobs the state recorded when the run started, by sequence number.</summary>
    private readonly Dictionary<long, StateJob> _recorded;

    /// <summary>Jobs read in this run and not yet taken by a worker, by sequence number.</summary>
    private readonly ConcurrentDictionary<long, object> _read = new();

    /// <summary>Recorded failed jobs a recovered copy has dead-lettered again in this run (once each).</summary>
    private readonly ConcurrentDictionary<long, byte> _replayed = new();

    private DurableJobQueue(RunState state, BoundedQueue<QueuedJob> queue)
    {
        _state = state;
        _queue = queue;
        _recorded = state.Jobs();
        Finished = _recorded.Values.Where(j => j.Standing != JobStanding.Queued).Select(j => j.Seq).ToHashSet();
    }

    public long Size => _queue.Size;

    public IReadOnlySet<long>? Finished { get; }

    /// <summary>Not after a kill: the copies the queue recovered come first and may run later jobs before earlier ones.</summary>
    public bool InOrder { get; private set; }

    /// <summary>The durable queue's settings for a state file: each job is tried once (the runner retries inside the try).</summary>
    public static QueueDurability Durability(string path) => new() { StoragePath = path, Retry = new RetryPolicy { MaxAttempts = 1 } };

    /// <summary>The queue's name lock file beside the state file <paramref name="statePath"/> (<c>S.jobs-5d9a17cb.lock</c>), as the library names it.</summary>
    public static string LockPathOf(string statePath) => QueueFileLock.PathFor(Durability(statePath).SqlitePath!, QueueName);

    /// <summary>Opens the durable queue in the state file (not started), making the file a run's state if it is not yet (<see cref="RunState.Prepare"/>).</summary>
    /// <exception cref="RunStateException">
    /// The file cannot hold a durable queue, or another process holds the queue's own lock: whatever opening it threw is
    /// the state's refusal (one line, exit 255), never an unhandled crash (an InvalidOperationException was: exit 134).
    /// </exception>
    public static DurableJobQueue Open(RunState state, int capacity)
    {
        state.Prepare();
        state.CreateQueueLock(LockPathOf(state.Path)); // a refused run removes it if this made it
        BoundedQueue<QueuedJob> queue;
        try
        {
            queue = new BoundedQueue<QueuedJob>(capacity, Durability(state.Path), QueueName);
        }
        catch (Exception ex)
        {
            throw Refusal(state, ex);
        }

        return new DurableJobQueue(state, queue);
    }

    /// <summary>The state's refusal for what opening or starting its queue threw: <see cref="QueueStorageException"/>'s message as it is, any other naming the file.</summary>
    private static RunStateException Refusal(RunState state, Exception ex) =>
        new(ex is QueueStorageException ? ex.Message : $"cannot use '{state.Path}': {ex.Message}", ex);

    /// <summary>
    /// Reads the input as far as the state recorded jobs, checking that it gives the same job (sequence number and
    /// command line) for each; returns the jobs to run from that part (the others are finished: <paramref name="skip"/>
    /// hears of each), or the problem when the input is not the one the state was made from.
    /// </summary>
    public async Task<(List<object> Unfinished, string? Problem)> ReadRecordedAsync(IAsyncEnumerator<object> input, Func<long, Task> skip)
    {
        var unfinished = new List<object>();
        if (_recorded.Count == 0)
        {
            return (unfinished, null);
        }

        var last = _recorded.Keys.Max();
        long read = 0;
        while (read < last && await input.MoveNextAsync())
        {
            var item = input.Current;
            var (seq, command) = item switch
            {
                Job job => (job.Seq, job.Command),
                MalformedJob bad => (bad.Seq, (string?)null),
                _ => throw new InvalidOperationException($"unexpected job {item}"),
            };
            read = seq;
            if (_recorded.TryGetValue(seq, out var recorded) && recorded.Command != command)
            {
                return (unfinished, $"'{_state.Path}' records job {seq} as '{Shorten(recorded.Command)}', but the input now gives " +
                                    (command is null ? "an invalid line" : $"'{Shorten(command)}'") +
                                    "; a state belongs to one input and command (use another --state FILE to start afresh)");
            }

            if (Finished!.Contains(seq))
            {
                await skip(seq);
            }
            else
            {
                unfinished.Add(item);
            }
        }

        return read < last
            ? (unfinished, $"'{_state.Path}' records {_recorded.Count} {(_recorded.Count == 1 ? "job" : "jobs")} up to job {last}, but the input now ends after job {read}; " +
                           "a state belongs to one input and command (use another --state FILE to start afresh)")
            : (unfinished, null);
    }

    public async Task StartAsync(Func<object, Task<JobEnd>> run, int workers, Func<Exception, object, Task> unexpected)
    {
        await OpenAsync();
        await StartWorkersAsync(run, workers, unexpected);
    }

    /// <summary>
    /// Starts the queue with what it recovered, and no workers yet: puts are taken, nothing runs. The runner starts the
    /// workers at once (<see cref="StartAsync"/>); a test puts the reader's copy of a recovered job first.
    /// </summary>
    /// <exception cref="RunStateException">The journal in the state file could not be recovered.</exception>
    public async Task OpenAsync()
    {
        try
        {
            await _queue.StartAsync();
        }
        catch (Exception ex) when (ex is not (RunStateException or OperationCanceledException))
        {
            throw Refusal(_state, ex);
        }

        InOrder = _queue.Size == 0; // no worker yet: what the queue holds is what it recovered

        await PurgeStaleDeadLettersAsync();
    }

    /// <summary>
    /// Opens the queue and settles the copies it recovered without running any job (<c>dead-letters</c>): a copy of a
    /// job the state records as failed becomes the dead letter a kill cut short, as a restarted run would make it; every
    /// other copy ends quietly, as in a run (the state, not the copies, says which jobs the next run reads and puts).
    /// </summary>
    /// <exception cref="RunStateException">The journal in the state file could not be recovered.</exception>
    public async Task SettleRecoveredAsync()
    {
        await OpenAsync();
        await StartWorkersAsync(_ => Task.FromResult(JobEnd.NotFinished), 1, (_, _) => Task.CompletedTask); // this run read no job: none runs
        await JoinAsync(CancellationToken.None);
    }

    /// <summary>Starts <paramref name="workers"/> workers on the opened queue (<see cref="OpenAsync"/>), each handling one copy of a job at a time.</summary>
    public Task StartWorkersAsync(Func<object, Task<JobEnd>> run, int workers, Func<Exception, object, Task> unexpected) =>
        _queue.StartWorkersAsync((queued, _) => HandleAsync(queued, run, unexpected), workers,
            (_, _) => Task.CompletedTask); // a failed job's throw is how it becomes a dead letter; the runner already reported it

    public async Task PutAsync(object item, CancellationToken cancellationToken)
    {
        var queued = item switch
        {
            Job job => new QueuedJob(job.Seq, job.Command),
            MalformedJob bad => new QueuedJob(bad.Seq, ""),
            _ => throw new InvalidOperationException($"unexpected job {item}"),
        };
        if (item is Job)
        {
            _state.Queued(queued.Seq, queued.Command); // before the queue holds it, so a restart checks it against the input
        }

        // Readable by a worker before the put returns: a recovered copy of this job may take it at once.
        _read[queued.Seq] = item;
        try
        {
            await _queue.PutAsync(queued, Timeout.InfiniteTimeSpan, cancellationToken);
        }
        catch
        {
            _read.TryRemove(queued.Seq, out _);
            throw;
        }
    }

    public Task JoinAsync(CancellationToken cancellationToken) => _queue.JoinAsync(cancellationToken);

    public async Task<int> StopAsync()
    {
        await _queue.StopAsync(Timeout.InfiniteTimeSpan);
        var drained = await _queue.DrainAsync();
        // Taken out of the journal; the state still has them as not finished, so the next run puts them again.
        return drained.Select(q => q.Seq).Distinct().Count(_read.ContainsKey);
    }

    public ValueTask DisposeAsync() => _queue.DisposeAsync();

    /// <summary>
    /// A worker's turn with one copy of a job: it runs the job if this run read it and no other copy took it; a
    /// recovered copy of a recorded failed job fails once more (to become the dead letter the kill prevented); any other
    /// copy ends quietly.
    /// </summary>
    private async Task HandleAsync(QueuedJob queued, Func<object, Task<JobEnd>> run, Func<Exception, object, Task> unexpected)
    {
        if (_read.TryRemove(queued.Seq, out var item))
        {
            JobEnd end;
            try
            {
                end = await run(item);
            }
            catch (Exception ex)
            {
                await unexpected(ex, item); // counted as failed and not recorded: the next run tries it again
                return;
            }

            if (end == JobEnd.Failed)
            {
                throw new JobFailedException($"job {queued.Seq} failed");
            }

            return;
        }

        if (_recorded.TryGetValue(queued.Seq, out var recorded) && recorded.Standing == JobStanding.Failed && _replayed.TryAdd(queued.Seq, 0))
        {
            throw new JobFailedException($"job {queued.Seq} failed");
        }
    }

    /// <summary>
    /// Dead letters whose job the state does not record as failed (their job was requeued, or its finishing was not
    /// recorded before a kill, so it runs again) are purged, and of several for one job only the newest stays.
    /// </summary>
    private async Task PurgeStaleDeadLettersAsync()
    {
        var letters = await _queue.DeadLettersAsync();
        var stale = letters
            .GroupBy(letter => letter.Item.Seq)
            .SelectMany(group => _recorded.TryGetValue(group.Key, out var job) && job.Standing == JobStanding.Failed
                ? group.OrderByDescending(letter => letter.Id).Skip(1)
                : group)
            .Select(letter => letter.Id)
            .ToList();
        if (stale.Count > 0)
        {
            await _queue.PurgeDeadLettersAsync(stale);
        }
    }

    private static string Shorten(string command) => command.Length <= 80 ? command : $"{command[..80]}...";
}
