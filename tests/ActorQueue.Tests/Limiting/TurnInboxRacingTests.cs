using System.Collections.Concurrent;
using ActorQueue.Actors;
using static ActorQueue.Tests.Limiting.TurnInboxRecording;

namespace ActorQueue.Tests.Limiting;

/// <summary>The turn protocol of <see cref="TurnInbox"/> under racing pushers (and a sweeper taking with <c>TryTake</c>): every op runs once, one thread in a turn at a time, each pusher's ops in its order.</summary>
public sealed class TurnInboxRacingTests
{
    [Fact]
    public void Racing_pushers_every_op_runs_exactly_once_one_thread_at_a_time_and_each_pushers_ops_in_its_order()
    {
        const int Pushers = 8;
        const int PerPusher = 20_000;
        var inbox = new RecordingInbox { RecordEvents = false, RestingSpins = 40 };
        var ops = new Op[Pushers][];
        for (var p = 0; p < Pushers; p++)
        {
            ops[p] = Enumerable.Range(0, PerPusher).Select(i => new Op(p, i)).ToArray();
        }

        using var start = new Barrier(Pushers);
        var failures = new ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, Pushers).Select(p => Guarded(failures, () =>
        {
            start.SignalAndWait();
            foreach (var op in ops[p])
            {
                inbox.Submit(op);
                if (op.Sequence % 512 == 0)
                {
                    Thread.Yield(); // let others own the turn now and then
                }
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        threads.ForEach(thread => Assert.True(thread.Join(Patience), "a pusher never returned"));
        Assert.Empty(failures);

        WaitUntil(() => inbox.RunCount == Pushers * PerPusher && !inbox.IsTaken,
                  () => $"{inbox.RunCount} of {Pushers * PerPusher} ops ran (taken: {inbox.IsTaken})");
        Assert.Equal(1, inbox.MaxInside);
        Assert.Equal(0, inbox.ProtocolViolations);
        Assert.Empty(ops.SelectMany(pusher => pusher).Where(op => op.Runs != 1).Select(op => $"{op} ran {op.Runs} times"));
        for (var p = 0; p < Pushers; p++)
        {
            var mine = inbox.RunOrder.Where(op => op.Pusher == p).Select(op => op.Sequence);
            Assert.Equal(Enumerable.Range(0, PerPusher), mine);
        }

        Assert.True(inbox.TakenCount >= 1 && inbox.RestingCount >= inbox.TakenCount,
                    $"every take rests before it gives back ({inbox.TakenCount} taken, {inbox.RestingCount} resting)");
    }

    [Fact]
    public void Racing_pushers_and_a_sweeper_that_takes_with_TryTake_never_share_a_turn_and_lose_nothing()
    {
        const int Pushers = 4;
        const int PerPusher = 20_000;
        var inbox = new RecordingInbox { RecordEvents = false, RestingSpins = 40 };
        var sweeps = 0;
        var failedSweeps = 0;
        using var done = new CancellationTokenSource();
        var failures = new ConcurrentQueue<Exception>();
        var sweeper = Guarded(failures, () =>
        {
            while (!done.IsCancellationRequested)
            {
                if (!inbox.TryTake())
                {
                    failedSweeps++;
                    continue;
                }

                // Inside the sweeper's turn nobody else runs: the counter says so.
                inbox.Inside(() => sweeps++);
                inbox.GiveBack();
            }
        });
        sweeper.Start();

        var threads = Enumerable.Range(0, Pushers).Select(p => Guarded(failures, () =>
        {
            for (var i = 0; i < PerPusher; i++)
            {
                inbox.Submit(new Op(p, i));
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        threads.ForEach(thread => Assert.True(thread.Join(Patience), "a pusher never returned"));
        WaitUntil(() => inbox.RunCount == Pushers * PerPusher || !failures.IsEmpty, () => $"{inbox.RunCount} of {Pushers * PerPusher} ops ran");
        done.Cancel();
        Assert.True(sweeper.Join(Patience));
        Assert.Empty(failures);

        WaitUntil(() => !inbox.IsTaken, () => "the turn is given back");
        Assert.Equal(1, inbox.MaxInside);
        Assert.Equal(0, inbox.ProtocolViolations);
        Assert.Equal(Pushers * PerPusher, inbox.RunOrder.Count);
        Assert.True(sweeps > 0, $"the sweeper took the turn at least once ({failedSweeps} attempts found it taken)");
        for (var p = 0; p < Pushers; p++)
        {
            Assert.Equal(Enumerable.Range(0, PerPusher), inbox.RunOrder.Where(op => op.Pusher == p).Select(op => op.Sequence));
        }
    }
}
