using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39 second reading (helper 187): the worker gate under racing <c>BatchProcessAsync</c> (two), <c>ProcessAsync</c>,
/// <c>Queue.StartWorkersAsync</c> and, every third round, a disposal, all released together. It asserts outcomes, never timing.
/// </summary>
public sealed class WorkerGateStressRound39Tests : ActorQueueTestKit
{
    private const int Rounds = 200;
    private const int PerBatch = 5;

    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// Every round: a batch either ran (each of its items handled once, processed by its own worker or reported failed to
    /// its handler), was refused as another batch running (nothing read, nothing handled), or was ended by the disposal
    /// (each item it read handled once: processed or reported). No item of a batch runs in another worker function, the
    /// two batches' items are never in flight together, the starts complete or are refused (a batch running, or disposed),
    /// and the gate is free once every call has ended.
    /// </summary>
    [Fact]
    public async Task Racing_batches_starts_and_disposals_keep_the_gate_invariants()
    {
        for (var round = 0; round < Rounds; round++)
        {
            var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 2 }, system: Sys, name: $"h187-gate-stress-{round}");
            var handled = new ConcurrentQueue<(string By, int Item)>();
            var reported = new ConcurrentQueue<(string By, int Item)>();
            var inFlight = new int[2];
            var overlaps = 0;
            var read = new int[2];
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            Func<int, Task> Worker(string by, int index) => async item =>
            {
                Interlocked.Increment(ref inFlight[index]);
                if (Volatile.Read(ref inFlight[1 - index]) > 0)
                {
                    Interlocked.Increment(ref overlaps);
                }

                handled.Enqueue((by, item));
                await Task.Yield();
                Interlocked.Decrement(ref inFlight[index]);
            };

            Task Batch(string by, int index, int first) => Task.Run(async () =>
            {
                await go.Task;
                var items = Enumerable.Range(first, PerBatch).Select(item =>
                {
                    Interlocked.Increment(ref read[index]);
                    return item;
                });
                await queue.BatchProcessAsync(items, Worker(by, index), errorHandler: (_, item) =>
                {
                    reported.Enqueue((by, item));
                    return Task.CompletedTask;
                });
            });

            var calls = new List<Task>
            {
                Batch("a", 0, 0),
                Batch("b", 1, 100),
                Task.Run(async () =>
                {
                    await go.Task;
                    await queue.ProcessAsync(item => { handled.Enqueue(("process", item)); return Task.CompletedTask; });
                }),
                Task.Run(async () =>
                {
                    await go.Task;
                    await queue.Queue.StartWorkersAsync(item => { handled.Enqueue(("start", item)); return Task.CompletedTask; }, 1);
                }),
            };
            if (round % 3 == 2)
            {
                calls.Add(Task.Run(async () =>
                {
                    await go.Task;
                    await queue.DisposeAsync();
                }));
            }

            go.SetResult();
            var outcomes = new Exception?[calls.Count];
            for (var i = 0; i < calls.Count; i++)
            {
                outcomes[i] = await Record.ExceptionAsync(() => calls[i].WaitAsync(Bound));
            }

            var gateFree = !queue.Queue.WorkerGate.BatchOwns && queue.Queue.WorkerGate.TryEnterStart();
            if (gateFree)
            {
                queue.Queue.WorkerGate.LeaveStart();
            }

            await queue.DisposeAsync().AsTask().WaitAsync(Bound);
            Assert.True(gateFree, $"round {round}: the gate was left taken");
            Assert.Equal(0, overlaps);
            for (var i = 0; i < 2; i++)
            {
                var (by, first) = i == 0 ? ("a", 0) : ("b", 100);
                var mine = handled.Where(h => h.Item >= first && h.Item < first + PerBatch).ToList();
                Assert.All(mine, h => Assert.Equal(by, h.By));
                var done = mine.Select(h => h.Item).Concat(reported.Where(r => r.By == by).Select(r => r.Item)).Order().ToList();
                switch (outcomes[i])
                {
                    case null:
                        Assert.Equal(Enumerable.Range(first, PerBatch), done);
                        break;
                    case InvalidOperationException refused when refused.Message.Contains("already running"):
                        Assert.Equal(0, read[i]);
                        Assert.Empty(done);
                        break;
                    case ObjectDisposedException:
                        Assert.Equal(Enumerable.Range(first, read[i]), done);
                        break;
                    default:
                        Assert.Fail($"round {round}: batch {by} ended with {outcomes[i]}");
                        break;
                }
            }

            for (var i = 2; i < calls.Count; i++)
            {
                Assert.True(outcomes[i] is null or ObjectDisposedException
                                || (outcomes[i] is InvalidOperationException start && start.Message.Contains("batch is running")),
                            $"round {round}: call {i} ended with {outcomes[i]}");
            }
        }
    }
}
