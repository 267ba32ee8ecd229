using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Cli.Jobs;

namespace ActorQueue.Tests.Cli;

/// <summary><c>run --state</c>'s durable job queue in-process: the copies of one job a restart holds run it once.</summary>
public sealed class DurableJobQueueTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorqueue-jobqueue-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true); // the queues closed their pooled connections (round 53): no ClearAllPools, which also closed a parallel test's

    [Fact]
    public async Task A_recovered_copy_and_the_reread_copy_of_one_job_run_it_once_even_when_the_reader_puts_first()
    {
        var path = Path.Combine(_dir, "state.db");
        // What a killed run leaves: the state records job 1 as read, and the journal still holds its copy.
        using (var killed = RunState.Open(path, create: true))
        {
            killed.Queued(1, "echo one");
            await using var left = new BoundedQueue<QueuedJob>(16, DurableJobQueue.Durability(path), DurableJobQueue.QueueName);
            await left.StartAsync();
            Assert.True(await left.PutAsync(new QueuedJob(1, "echo one")));
        }

        using var state = RunState.Open(path, create: false);
        await using var queue = DurableJobQueue.Open(state, capacity: 16);
        await queue.OpenAsync();
        // The reader's copy is in before any worker takes the recovered one: both copies find the job read.
        await queue.PutAsync(new Job(1, "1", "echo one", [], null, null, new Dictionary<string, string>()), CancellationToken.None);
        var runs = new ConcurrentDictionary<long, int>();
        await queue.StartWorkersAsync(item =>
        {
            runs.AddOrUpdate(((Job)item).Seq, 1, (_, count) => count + 1);
            return Task.FromResult(JobEnd.Succeeded);
        }, workers: 2, (_, _) => Task.CompletedTask);
        await queue.JoinAsync(CancellationToken.None);

        Assert.Equal(1, runs.GetValueOrDefault(1));
        Assert.Equal(0, queue.Size);
    }
}
