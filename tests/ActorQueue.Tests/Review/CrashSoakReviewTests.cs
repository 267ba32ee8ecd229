using ActorQueue.Actors;
using ActorQueue.Cli.Commands;
using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Kill points that a soak of <c>actorqueue run --state</c> and of durable queues (SIGKILL at seeded random points,
/// restarts, kills during start-up and shutdown, kills twice in a row) found or thought worth guarding (helper 119),
/// each reduced to the files the kill leaves, so no test waits for a lucky kill.
/// </summary>
public sealed class CrashSoakReviewTests : IDisposable
{
    private const string FailingJob = "echo ran >> effects.txt; exit 3";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose(); // a disposed durable queue closes its pooled connections itself (round 53): no ClearAllPools, which also closed a parallel test's live queue's

    /// <summary>
    /// What a run killed just after its failed job 1 was recorded leaves: the state records job 1 as failed (its output
    /// and joblog record were written before), but the durable queue's write that makes it a dead letter had not
    /// happened, so the journal still holds its copy. (A job's report writes the state first; the worker's throw that
    /// dead-letters it is journaled with the queue's next write.)
    /// </summary>
    private async Task<string> KilledAfterRecordingAFailureAsync()
    {
        var state = _scratch.PathOf("state.db");
        _scratch.Write("jobs.txt", FailingJob);
        using (var killed = RunState.Open(state, create: true))
        {
            killed.Queued(1, FailingJob);
            await using (var left = new BoundedQueue<QueuedJob>(16, DurableJobQueue.Durability(state), DurableJobQueue.QueueName))
            {
                await left.StartAsync();
                Assert.True(await left.PutAsync(new QueuedJob(1, FailingJob)));
            }

            killed.Finished(1, FailingJob, succeeded: false, exit: 3, signal: 0, attempts: 2, error: "exited with 3");
        }

        return state;
    }

    private Task<CliResult> DeadLettersAsync(params string[] args) =>
        CliProcess.RunAsync(_scratch.Dir, null, ["dead-letters", "--state", "state.db", .. args]);

    private Task<CliResult> RunAgainAsync() => CliProcess.RunAsync(_scratch.Dir, null, "run", "jobs.txt", "-q", "--state", "state.db");

    private int Runs() => File.Exists(_scratch.PathOf("effects.txt")) ? File.ReadAllLines(_scratch.PathOf("effects.txt")).Length : 0;

    /// <summary>
    /// <c>dead-letters list</c> right after such a kill lists the failed job, as the README promises of every job
    /// whose last attempt failed. Failed before: only the header was printed (the command listed the journal's dead
    /// letters, and the kill had cut job 1's short); <c>dead-letters requeue 1</c> was refused as "not a dead letter".
    /// </summary>
    [Fact]
    public async Task A_failure_recorded_just_before_a_kill_is_listed_as_a_dead_letter()
    {
        await KilledAfterRecordingAFailureAsync();

        var list = await DeadLettersAsync();

        Assert.Equal(0, list.ExitCode);
        Assert.Equal($"{DeadLettersCommand.ListHeader}\n1\t2\t3\t0\texited with 3\t{FailingJob}\n", list.Output);
        Assert.Equal(0, Runs());
    }

    /// <summary>
    /// <c>dead-letters requeue</c> (all) right after such a kill requeues that job: the next run runs it again. Failed
    /// before: "requeued 0 failed job(s)", and the next run ran nothing (it only turned the journal's copy into the dead
    /// letter), so the requeue the user asked for was silently dropped.
    /// </summary>
    [Fact]
    public async Task A_failure_recorded_just_before_a_kill_is_requeued_by_requeue_all()
    {
        await KilledAfterRecordingAFailureAsync();

        var requeue = await DeadLettersAsync("requeue");
        var run = await RunAgainAsync();

        Assert.Equal(0, requeue.ExitCode);
        Assert.Contains("requeued 1 failed job(s)", requeue.Errors, StringComparison.Ordinal);
        Assert.Equal(1, run.ExitCode); // job 1 ran again and failed again
        Assert.Equal(1, Runs());
    }

    /// <summary>
    /// <c>dead-letters purge</c> (all) right after such a kill forgets that job for good: after the next run it is not a
    /// dead letter again. Failed before: "purged 0 dead letter(s)", and the next run turned the journal's copy into a dead
    /// letter that <c>dead-letters list</c> showed once more.
    /// </summary>
    [Fact]
    public async Task A_failure_recorded_just_before_a_kill_stays_purged_by_purge_all()
    {
        await KilledAfterRecordingAFailureAsync();

        var purge = await DeadLettersAsync("purge");
        var run = await RunAgainAsync();
        var list = await DeadLettersAsync();

        Assert.Contains("purged 1 dead letter(s)", purge.Errors, StringComparison.Ordinal);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"{DeadLettersCommand.ListHeader}\n", list.Output);
        Assert.Equal(0, Runs());
    }
}
