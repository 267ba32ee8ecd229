using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 52 (h240's review): a run refused after its durable queue opened on a NEW <c>--state</c> (its joblog's header
/// could not be written: a full disk) removed the state file while the queue's pooled SQLite connections still had it
/// open, so SQLite never checkpointed: <c>S-wal</c> and <c>S-shm</c> stayed beside the removed state. A state copied to
/// that path later (<c>cp S T</c>) had the stale WAL applied by SQLite as it opened: its finished jobs vanished and ran
/// again (h240: "2 succeeded" where the control, without the leftovers, skipped both).
/// </summary>
public sealed class RefusedStateWalRound52Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// A new state, its queue opened and written, the run refused: the state, its lock files and SQLite's own
    /// <c>-wal</c>/<c>-shm</c> are all gone. Failed before: "left [S-shm, S-wal]".
    /// </summary>
    [Fact]
    public async Task A_refused_new_state_whose_queue_was_written_leaves_no_wal_behind()
    {
        var path = _scratch.PathOf("S");
        var state = RunState.Open(path, create: true);
        await using (var queue = DurableJobQueue.Open(state, capacity: 16))
        {
            await queue.OpenAsync();
            await queue.PutAsync(new Job(1, "1", "echo one", [], null, null, new Dictionary<string, string>()), CancellationToken.None);
        }

        state.DisposeAndRemoveIfMade();

        var left = _scratch.Entries();
        Assert.True(left.Length == 0, $"left [{string.Join(", ", left)}]");
    }
}
