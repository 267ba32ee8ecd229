using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 second reading (helper 187): the worker gate on its own (no queue), where a batch that waited for a worker
/// start races another batch for the workers.
/// </summary>
public sealed class WorkerGateRaceRound39Tests
{
    private const int Rounds = 100_000;

    /// <summary>
    /// Each round: a start is being sent, batch A waits for it; the start leaves and, as A wakes, batch B (not waiting)
    /// takes the workers and gives them back at once; then worker starts are tried until A has its answer. Expected: once
    /// B has given the workers back, no start is refused (A, refused since B took the workers meanwhile, never holds
    /// them), A is refused or runs (then owning the gate), and the gate ends free. Failed before: "round N: a start was
    /// refused after the only batch that ran had ended" — A took the gate, saw B's count and gave it back, and a start in
    /// between was refused as if a batch ran.
    /// </summary>
    /// <remarks>
    /// The rounds run on a thread of their own, not the pool's: A wakes on a pool continuation, and the spin below held a
    /// pool thread until it did, so on a loaded 2-core machine the continuation waited for the pool to grow (CI: 1 to 25 s
    /// for the test). Every task read is complete when read, so the body is synchronous. The spin itself is as tight as
    /// before for its first <see cref="TightSpins"/> tries (the race window: A waking while starts are tried); a spin still
    /// waiting after them yields between tries, so a continuation queued on this core gets it.
    /// </remarks>
    [Fact]
    public async Task A_waiting_batch_refused_for_another_that_ran_never_holds_the_gate()
    {
        await Task.Factory.StartNew(RunRounds, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Tries of a start per round before the spin begins to yield.</summary>
    private const int TightSpins = 10_000;

    private static void RunRounds()
    {
        for (var round = 0; round < Rounds; round++)
        {
            var gate = new WorkerGate();
            Assert.True(gate.TryEnterStart());
            var waiting = gate.TryBeginBatchAsync().AsTask();
            Assert.False(waiting.IsCompleted);
            gate.LeaveStart();
            var other = gate.TryBeginBatchAsync();
            var otherRan = other.IsCompletedSuccessfully && other.Result;
            if (otherRan)
            {
                gate.EndBatch();
            }

            var refusedAfter = 0;
            var tries = 0;
            while (!waiting.IsCompleted)
            {
                if (++tries > TightSpins)
                {
                    Thread.Yield();
                }

                if (gate.TryEnterStart())
                {
                    gate.LeaveStart();
                }
                else if (otherRan)
                {
                    refusedAfter++;
                }
            }

            var waitedRan = waiting.GetAwaiter().GetResult(); // complete: the loop above ended on it
            Assert.True(refusedAfter == 0, $"round {round}: a start was refused after the only batch that ran had ended ({refusedAfter} times)");
            Assert.False(otherRan && waitedRan, $"round {round}: both batches ran");
            if (waitedRan)
            {
                Assert.True(gate.BatchOwns);
                gate.EndBatch();
            }

            Assert.True(gate.TryEnterStart(), $"round {round}: the gate was left taken");
            gate.LeaveStart();
        }
    }
}
