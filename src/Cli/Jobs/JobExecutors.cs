using ActorQueue.Cluster;

namespace ActorQueue.Cli.Jobs;

/// <summary>Runs one attempt of a job: here, or on a worker node of the cluster.</summary>
internal interface IJobExecutor
{
    /// <summary>Runs the job's command once.</summary>
    /// <param name="job">The job.</param>
    /// <param name="timeout">How long the attempt may run.</param>
    /// <param name="kill">Kills (or, for a remote job, abandons) the attempt.</param>
    /// <param name="stopping">Cancelled when the run stops (no new job starts): a remote job not running then is withdrawn (one still waiting for space in the cluster's queue included; one not yet submitted is never submitted), and one handed back later is not started again — except one a worker asks for before its withdrawal reaches the cluster's queue.</param>
    /// <returns>How the attempt ended.</returns>
    /// <exception cref="JobHandedBackException">The run stopped and its job was not started again: withdrawn from the cluster's queue, or handed back with no worker node left to run it.</exception>
    Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill, CancellationToken stopping);
}

/// <summary>Runs jobs as local processes.</summary>
internal sealed class LocalJobExecutor : IJobExecutor
{
    public static readonly LocalJobExecutor Instance = new();

    /// <inheritdoc />
    public Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill, CancellationToken stopping) => JobProcess.RunAsync(job, timeout, kill);
}

/// <summary>A job as it travels to a worker node (System.Text.Json).</summary>
/// <param name="Id">The job's id, for the node's logs.</param>
/// <param name="Command">The shell command.</param>
/// <param name="Environment">Extra environment variables.</param>
/// <param name="TimeoutSeconds">How long the attempt may run, in seconds; <c>null</c> for no limit.</param>
internal sealed record RemoteJob(string Id, string Command, Dictionary<string, string> Environment, double? TimeoutSeconds);

/// <summary>How a job ended on a worker node; its output travels whole, as bytes.</summary>
/// <param name="ExitCode">The exit code; -1 when the job did not exit by itself.</param>
/// <param name="Signal">9 when its process group was killed at the timeout.</param>
/// <param name="TimedOut">Whether it hit its timeout.</param>
/// <param name="Output">Its stdout, byte for byte.</param>
/// <param name="Errors">Its stderr, byte for byte.</param>
/// <param name="Problem">Why it could not start on the node; <c>null</c> when it ran.</param>
internal sealed record RemoteJobResult(int ExitCode, int Signal, bool TimedOut, byte[] Output, byte[] Errors, string? Problem = null);

/// <summary>The distributed queue that <c>actorqueue run --cluster</c> feeds and <c>actorqueue node</c> workers serve.</summary>
internal static class ClusterJobs
{
    public const string QueueName = "actorqueue-jobs";

    /// <summary>
    /// The worker nodes' handler: runs the job as a local process, with <c>ACTORQUEUE_NODE</c> set to the node's address.
    /// A job the node's own stop interrupted throws, so it is not reported as finished and runs again elsewhere.
    /// </summary>
    public static Func<RemoteJob, CancellationToken, Task<RemoteJobResult>> Handler(string nodeAddress) => async (remote, token) =>
    {
        var environment = new Dictionary<string, string>(remote.Environment) { ["ACTORQUEUE_NODE"] = nodeAddress };
        var job = new Job(0, remote.Id, remote.Command, [], null, null, environment);
        var timeout = remote.TimeoutSeconds is { } seconds ? Durations.FromSeconds(seconds) : null;
        using var result = await JobProcess.RunAsync(job, timeout, token).ConfigureAwait(false);
        token.ThrowIfCancellationRequested();
        var output = await result.Output.ToArrayAsync(MaxResultBytes).ConfigureAwait(false);
        var errors = await result.Errors.ToArrayAsync(MaxResultBytes - output.Length).ConfigureAwait(false);
        var problem = result.Output.Length + result.Errors.Length > MaxResultBytes
            ? $"its output ({result.Output.Length + result.Errors.Length} bytes) is more than a cluster result carries ({MaxResultBytes} bytes); the first {MaxResultBytes} are shown"
            : result.Problem;
        return new RemoteJobResult(result.ExitCode, result.Signal, result.End == AttemptEnd.TimedOut, output, errors, problem);
    };

    /// <summary>
    /// The most output a result carries back. The whole result is one remoting message, and Akka discards a message over
    /// its frame size (128,000 bytes by default) without telling the sender, which would leave the job waiting for ever;
    /// 64 KiB, base64-encoded in JSON, fits with room to spare.
    /// </summary>
    public const int MaxResultBytes = 64 * 1024;
}

/// <summary>
/// The executor itself is gone (the coordinator's own cluster node stopped): the job did not run, or its outcome is
/// unknown. It is neither finished nor failed, so it is not logged and <c>--resume</c> runs it.
/// </summary>
internal sealed class ExecutorLostException(string message) : Exception(message);

/// <summary>
/// The run stopped and its job is not started again: it was withdrawn from the cluster's queue (queued, or handed back
/// by a worker node that left or stopped it), or handed back with no worker node left to run it. It is neither finished
/// nor failed; not logged, <c>--resume</c> runs it.
/// </summary>
/// <param name="withdrawn">Withdrawn from the cluster's queue (else given up for want of a worker node).</param>
internal sealed class JobHandedBackException(bool withdrawn) : Exception(withdrawn
    ? "the job was withdrawn from the cluster's queue after the run stopped"
    : "the job was handed back after the run stopped, and no worker node is left to run it")
{
    /// <summary>Whether the job was withdrawn from the cluster's queue (else given up for want of a worker node).</summary>
    public bool Withdrawn { get; } = withdrawn;
}

/// <summary>Runs jobs on the cluster's worker nodes through the distributed job queue.</summary>
/// <param name="queue">The distributed job queue.</param>
/// <param name="stopped">Completes when the coordinator's actor system has stopped (downed, or shut down by its transport).</param>
/// <param name="workerNodes">How many worker nodes are up now.</param>
internal sealed class ClusterJobExecutor(DistributedWorkQueue<RemoteJob, RemoteJobResult> queue, Task stopped, Func<int> workerNodes) : IJobExecutor
{
    /// <summary>How often a stopped run's job waiting for its result checks whether a worker node is left.</summary>
    private static readonly TimeSpan NodesPoll = TimeSpan.FromMilliseconds(200);

    /// <inheritdoc />
    public async Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill, CancellationToken stopping)
    {
        var remote = new RemoteJob(job.Id, job.Command, new Dictionary<string, string>(job.Environment), timeout?.TotalSeconds);
        ItemResult<RemoteJobResult> ended;
        try
        {
            // Not submitted once the run stops, and a put still waiting for space in the cluster's queue (at capacity) when
            // it stops is withdrawn there: it has no item the stop could withdraw, and the space a withdrawn job frees would
            // let it in to start after the stop.
            DistributedItem<RemoteJobResult>? accepted;
            using (var submitting = CancellationTokenSource.CreateLinkedTokenSource(kill, stopping))
            {
                accepted = await UnlessStoppedAsync(queue.SubmitAsync(remote, Timeout.InfiniteTimeSpan, submitting.Token)).ConfigureAwait(false);
            }

            if (accepted is null)
            {
                return AttemptResult.CouldNotRun("could not run (the cluster's job queue did not take it)");
            }

            ended = await UnlessStoppedAsync(UnlessHandedBackAsync(accepted, stopping).WaitAsync(kill)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (kill.IsCancellationRequested)
        {
            return AttemptResult.Interrupted(); // abandoned by a second Ctrl-C: not logged, --resume runs it
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw new JobHandedBackException(withdrawn: true); // not submitted, or withdrawn before the queue took it
        }
        catch (Exception ex) when (ex is ObjectDisposedException || ex is not ExecutorLostException && stopped.IsCompleted)
        {
            throw Lost(ex.Message);
        }

        if (ended.Withdrawn)
        {
            throw new JobHandedBackException(withdrawn: true);
        }

        var host = HostOf(ended.Node);
        if (ended is not { Succeeded: true, Result: { } result })
        {
            // A failure reported while the coordinator's node went down says nothing about the job itself.
            return stopped.IsCompleted ? throw Lost(ended.Error ?? "no result") : AttemptResult.CouldNotRun($"could not run on {ended.Node} ({ended.Error})", host);
        }

        var (output, errors) = (CapturedOutput.Of(result.Output), CapturedOutput.Of(result.Errors));
        return result switch
        {
            { Problem: { } problem } => AttemptResult.CouldNotRun(problem, host, output, errors),
            { TimedOut: true } => AttemptResult.TimedOut(output, errors, host),
            _ => AttemptResult.Exited(result.ExitCode, output, errors, host),
        };
    }

    /// <summary>
    /// The job's result. Once the run stops (<paramref name="stopping"/>) it is withdrawn from the cluster's queue: a job
    /// no worker runs when its withdrawal reaches the cluster's queue (queued, or handed back by a node that left) ends
    /// withdrawn and never starts (one a worker asked for in between starts, and is logged), and one a worker
    /// runs finishes as usual, unless that worker is lost with it (its node leaves), when it too ends withdrawn instead of
    /// starting on another node: the router keeps the withdrawal, so a hand-back after it cannot slip through. And with no
    /// worker node up, a job that waits for one gives up (<see cref="JobHandedBackException"/>): the stopped run, which
    /// starts no job, would count it as running for ever (a machine's shutdown stops the coordinator and its nodes at
    /// once). Before the stop a job waits for nodes however long: they may come back.
    /// </summary>
    private async Task<ItemResult<RemoteJobResult>> UnlessHandedBackAsync(DistributedItem<RemoteJobResult> accepted, CancellationToken stopping)
    {
        var completion = accepted.Completion;
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (stopping.Register(() => stop.TrySetResult()))
        {
            await Task.WhenAny(completion, stop.Task).ConfigureAwait(false);
        }

        if (!completion.IsCompleted)
        {
            // Its answer does not matter here: the job's result says whether it was withdrawn. A fault (the handle is
            // gone with the coordinator's node) shows in the result, too.
            _ = queue.TryWithdrawAsync(accepted).ContinueWith(t => t.Exception, TaskScheduler.Default);
        }

        using var poll = new PeriodicTimer(NodesPoll);
        while (!completion.IsCompleted)
        {
            if (workerNodes() == 0)
            {
                _ = completion.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed: the run no longer waits for it
                throw new JobHandedBackException(withdrawn: false);
            }

            await Task.WhenAny(completion, poll.WaitForNextTickAsync().AsTask()).ConfigureAwait(false);
        }

        return await completion.ConfigureAwait(false);
    }

    /// <summary><paramref name="task"/>'s result, unless the coordinator's node stops first (a handle may then never answer).</summary>
    private async Task<T> UnlessStoppedAsync<T>(Task<T> task)
    {
        if (await Task.WhenAny(task, stopped).ConfigureAwait(false) != task)
        {
            _ = task.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed: its fault no longer matters
            throw Lost("it stopped while the job was queued or running");
        }

        return await task.ConfigureAwait(false);
    }

    /// <summary>The run's executor is gone; the reason's first line only, so the stop's message stays one line.</summary>
    private static ExecutorLostException Lost(string detail) =>
        new($"the coordinator's cluster node stopped ({detail.Split('\n', 2)[0].TrimEnd('\r')})");

    /// <summary><c>host:port</c> of an Akka address like <c>akka.tcp://actorqueue@127.0.0.1:4053</c>.</summary>
    private static string HostOf(string node)
    {
        var at = node.LastIndexOf('@');
        return at >= 0 ? node[(at + 1)..] : node;
    }
}
