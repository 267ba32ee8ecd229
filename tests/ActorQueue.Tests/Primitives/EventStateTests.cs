using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The event's shared wait, driven directly: threads released together walk the same run of fresh states, so they race
/// on many of them — callers against callers for the first place, and callers against the one that sets.
/// </summary>
public class EventStateTests
{
    private const int States = 100_000;

    [Fact]
    public async Task Callers_racing_to_start_the_shared_wait_all_join_the_same_one()
    {
        const int Callers = 4;
        var states = Enumerable.Range(0, States).Select(_ => new EventState()).ToArray();
        var joined = new Task[Callers][];
        await Together(Callers, caller =>
        {
            var results = joined[caller] = new Task[States];
            return i => results[i] = states[i].Join();
        });

        for (var i = 0; i < States; i++)
        {
            for (var caller = 1; caller < Callers; caller++)
            {
                Assert.Same(joined[0][i], joined[caller][i]);
            }
        }
    }

    [Fact]
    public async Task A_caller_that_joins_while_the_event_is_set_is_never_left_waiting()
    {
        var states = Enumerable.Range(0, States).Select(_ => new EventState()).ToArray();
        var joined = new Task[States];
        await Together(2, thread => thread == 0 ? i => joined[i] = states[i].Join() : i => states[i].MarkSet());

        var stuck = Enumerable.Range(0, States).Count(i => !joined[i].IsCompleted);
        Assert.Equal(0, stuck);
    }

    [Fact]
    public void Abandoning_fails_the_shared_wait_but_not_a_set_one()
    {
        var unset = new EventState();
        var wait = unset.Join();
        unset.Abandon(new ObjectDisposedException("event"));
        Assert.IsType<ObjectDisposedException>(wait.Exception?.InnerException);
        Assert.IsType<ObjectDisposedException>(unset.Join().Exception?.InnerException);

        var set = new EventState();
        var done = set.Join();
        set.MarkSet();
        set.Abandon(new ObjectDisposedException("event"));
        Assert.True(done.IsCompletedSuccessfully);
    }

    /// <summary>Runs <paramref name="threads"/> dedicated threads released by one barrier, each calling its step for every state.</summary>
    private static async Task Together(int threads, Func<int, Action<int>> stepFor)
    {
        using var start = new Barrier(threads);
        await Task.WhenAll(Enumerable.Range(0, threads).Select(thread => Task.Factory.StartNew(() =>
        {
            var step = stepFor(thread);
            start.SignalAndWait();
            for (var i = 0; i < States; i++)
            {
                step(i);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
    }
}
