using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The event's shared wait: the first facade caller publishes it, every other caller joins it. Driven directly: threads
/// released together walk the same run of fresh states, so they race for the first place on many of them.
/// </summary>
public class EventStateTests
{
    [Fact]
    public async Task Callers_racing_to_start_the_shared_wait_all_join_the_same_one()
    {
        const int Callers = 4;
        const int States = 100_000;
        var states = Enumerable.Range(0, States).Select(_ => new EventState()).ToArray();
        var joined = new Task[Callers][];
        using var start = new Barrier(Callers);
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Factory.StartNew(() =>
        {
            var mine = new TaskCompletionSource().Task;
            var results = joined[caller] = new Task[States];
            start.SignalAndWait();
            for (var i = 0; i < States; i++)
            {
                results[i] = states[i].OfferCohort(mine);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));

        for (var i = 0; i < States; i++)
        {
            var shared = states[i].Cohort;
            Assert.NotNull(shared);
            for (var caller = 0; caller < Callers; caller++)
            {
                Assert.Same(shared, joined[caller][i]);
            }
        }
    }
}
