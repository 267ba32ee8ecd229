using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gatekeeper's books of actor callers: an idle caller stays watched (no watch and unwatch per acquire cycle), and
/// idle callers are forgotten in bulk, never one that still holds or waits.
/// </summary>
public class GatekeeperHolderBooksTests : ActorQueueTestKit
{
    private const int Callers = GatekeeperActor.IdleHoldersKept * 2 + 100;

    [Fact]
    public async Task Many_callers_that_went_idle_keep_the_books_bounded()
    {
        using var limiter = new ConcurrencyLimiter(4, system: Sys);

        await CycleOnce(limiter, Callers);

        var books = await limiter.Gatekeeper.Ask<int>(CountHolders.Instance, TimeSpan.FromSeconds(10));
        Assert.InRange(books, 0, GatekeeperActor.IdleHoldersKept + 1);
    }

    [Fact]
    public async Task A_sweep_of_idle_callers_keeps_a_holder_whose_stop_still_gives_its_slot_back()
    {
        using var limiter = new ConcurrencyLimiter(4, system: Sys);
        var holder = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("holder", 1), holder.Ref);
        await holder.ExpectMsgAsync<Granted>();

        await CycleOnce(limiter, Callers); // sweeps run while the holder holds

        Assert.Equal(1, (await this.StatusOf(limiter)).Running);
        Sys.Stop(holder.Ref);
        await Eventually(() => limiter.RunningCount == 0, "the stopped holder's slot came back");
    }

    /// <summary>Distinct actors each take a slot and give it back once, then stay alive and idle.</summary>
    private async Task CycleOnce(ConcurrencyLimiter limiter, int callers)
    {
        var done = new TaskCompletionSource[callers];
        for (var i = 0; i < callers; i++)
        {
            done[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var finished = done[i];
            Sys.ActorOf(Props.Create(() => new OneCycle(limiter.Gatekeeper, finished)));
        }

        await Within(Task.WhenAll(done.Select(d => d.Task)));
    }

    private sealed class OneCycle : ReceiveActor
    {
        public OneCycle(IActorRef gatekeeper, TaskCompletionSource done)
        {
            Receive<Granted>(granted =>
            {
                gatekeeper.Tell(new Release(granted.LeaseId));
                done.TrySetResult();
            });
            Receive<Queued>(_ => { });
            Receive<Rejected>(rejected => done.TrySetException(new InvalidOperationException(rejected.Reason)));
            gatekeeper.Tell(new Acquire("cycle", 1));
        }
    }
}
