using ActorQueue.Cluster;

namespace ActorQueue.Cli.Jobs;

/// <summary>Runs one attempt of a job: here, or on a worker node of the cluster.</summary>
internal interface IJobExecutor
{
    /// <summary>Runs the job's command once.</summary>
    /// <param name="job">The job.</param>
    /// <param name="timeout">How long the attempt may run.</param>
    /// <param name="kill">Kills (or, for a remote job, abandons) the attempt.</param>
    /// <returns>How the attempt ended.</returns>
    Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill);
}

/// <summary>Runs jobs as local processes.</summary>
internal sealed class LocalJobExecutor : IJobExecutor
{
    public static readonly LocalJobExecutor Instance = new();

    /// <inheritdoc />
    public Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill) => JobProcess.RunAsync(job, timeout, kill);
}

/// <summary>A job as it travels to a worker node (System.Text.Json).</summary>
/// <param name="Id">The job's id, for the node's logs.</param>
/// <param name="Command">The shell command.</param>
/// <param name="Environment">Extra environment variables.</param>
/// <param name="TimeoutSeconds">How long the attempt may run, in seconds; <c>null</c> for no limit.</param>
internal sealed record RemoteJob(string Id, string Command, Dictionary<string, string> Environment, double? TimeoutSeconds);

/// <summary>How a job ended on a worker node.</summary>
internal sealed record RemoteJobResult(int ExitCode, int Signal, bool TimedOut, string Output, string Errors);

/// <summary>The distributed queue that <c>actorqueue run --cluster</c> feeds and <c>actorqueue node</c> workers serve.</summary>
internal static class ClusterJobs
{
    public const string QueueName = "actorqueue-jobs";

    /// <summary>The worker nodes' handler: runs the job as a local process, with <c>ACTORQUEUE_NODE</c> set to the node's address.</summary>
    public static Func<RemoteJob, CancellationToken, Task<RemoteJobResult>> Handler(string nodeAddress) => async (remote, token) =>
    {
        var environment = new Dictionary<string, string>(remote.Environment) { ["ACTORQUEUE_NODE"] = nodeAddress };
        var job = new Job(0, remote.Id, remote.Command, [], null, null, environment);
        var timeout = remote.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        var result = await JobProcess.RunAsync(job, timeout, token).ConfigureAwait(false);
        return new RemoteJobResult(result.ExitCode, result.Signal, result.TimedOut, result.Output, result.Errors);
    };
}

/// <summary>Runs jobs on the cluster's worker nodes through the distributed job queue.</summary>
internal sealed class ClusterJobExecutor(DistributedWorkQueue<RemoteJob, RemoteJobResult> queue) : IJobExecutor
{
    /// <inheritdoc />
    public async Task<AttemptResult> RunAsync(Job job, TimeSpan? timeout, CancellationToken kill)
    {
        var remote = new RemoteJob(job.Id, job.Command, new Dictionary<string, string>(job.Environment), timeout?.TotalSeconds);
        var accepted = await queue.SubmitAsync(remote, Timeout.InfiniteTimeSpan, kill).ConfigureAwait(false);
        ItemResult<RemoteJobResult> ended;
        try
        {
            ended = await accepted!.Completion.WaitAsync(kill).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (kill.IsCancellationRequested)
        {
            return new AttemptResult(-1, 9, false, "", "", Host: null); // abandoned by a second Ctrl-C: not logged, --resume runs it
        }

        var host = HostOf(ended.Node);
        return ended is { Succeeded: true, Result: { } result }
            ? new AttemptResult(result.ExitCode, result.Signal, result.TimedOut, result.Output, result.Errors, host)
            : new AttemptResult(-1, 0, false, "", $"actorqueue: job {job.Id} could not run on {ended.Node}: {ended.Error}\n", host);
    }

    /// <summary><c>host:port</c> of an Akka address like <c>akka.tcp://actorqueue@127.0.0.1:4053</c>.</summary>
    private static string HostOf(string node)
    {
        var at = node.LastIndexOf('@');
        return at >= 0 ? node[(at + 1)..] : node;
    }
}
