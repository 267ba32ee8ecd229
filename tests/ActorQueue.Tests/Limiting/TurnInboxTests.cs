using ActorQueue.Actors;
using static ActorQueue.Tests.Limiting.TurnInboxRecording;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The turn protocol of <see cref="TurnInbox"/> on its own, through a subclass that records its hooks: every op
/// runs once, a pusher's ops in its order, one thread in a turn at a time, <c>Resting</c> before every give-back and
/// <c>Taken</c> again after one that failed, and an owner that served <see cref="TurnInbox.Throughput"/> ops of
/// others hands the rest of its turn to the pool and returns.
/// </summary>
public sealed class TurnInboxTests
{
    [Fact]
    public void A_free_turn_runs_the_op_on_the_callers_thread_and_is_given_back_after_resting()
    {
        var inbox = new RecordingInbox();
        var op = new Op(0, 0);

        inbox.Submit(op);

        Assert.Equal(["Taken", "Run 0.0", "Resting"], inbox.Events);
        Assert.Equal(Environment.CurrentManagedThreadId, op.RanOnThread);
        Assert.False(inbox.IsTaken, "the turn is given back");
    }

    [Fact]
    public void A_release_now_runs_in_a_free_turn_like_an_op_and_is_refused_by_a_taken_one()
    {
        var inbox = new RecordingInbox();

        Assert.True(inbox.ReleaseNow(2));
        Assert.Equal(["Taken", "Release 2 now", "Resting"], inbox.Events);
        Assert.False(inbox.IsTaken, "the turn is given back");

        Assert.True(inbox.TryTake());
        Assert.False(inbox.ReleaseNow(1)); // the caller pushes a release op instead
        inbox.GiveBack();
        Assert.Equal(["Taken", "Release 2 now", "Resting", "Taken", "Resting"], inbox.Events);
        Assert.Equal(0, inbox.ProtocolViolations);
    }

    [Fact]
    public void Ops_pushed_to_a_taken_turn_wait_for_its_owner_and_run_in_push_order()
    {
        var inbox = new RecordingInbox();
        Assert.True(inbox.TryTake());

        inbox.Submit(new Op(0, 0));
        inbox.Submit(new Op(0, 1));
        inbox.Submit(new Op(0, 2));

        Assert.Equal(["Taken", "Pushed", "After push", "Pushed", "After push", "Pushed", "After push"], inbox.Events);
        Assert.True(inbox.IsTaken);
        inbox.GiveBack();
        Assert.Equal(["Taken", "Pushed", "After push", "Pushed", "After push", "Pushed", "After push", "Run 0.0", "Run 0.1", "Run 0.2", "Resting"], inbox.Events);
        Assert.False(inbox.IsTaken);
    }

    [Fact]
    public void An_op_that_throws_is_handed_to_Faulted_and_the_turn_goes_on_for_the_ops_after_it()
    {
        var inbox = new RecordingInbox
        {
            OnRun = op =>
            {
                if (op.Sequence == 1)
                {
                    throw new InvalidOperationException("boom");
                }
            },
        };
        Assert.True(inbox.TryTake());
        inbox.Submit(new Op(0, 0));
        inbox.Submit(new Op(0, 1));
        inbox.Submit(new Op(0, 2));

        inbox.GiveBack(); // the throw never reaches the owner, whose op it was not

        Assert.Equal(["Taken", "Pushed", "After push", "Pushed", "After push", "Pushed", "After push", "Run 0.0", "Run 0.1", "Faulted 0.1: boom", "Run 0.2", "Resting"], inbox.Events);
        Assert.False(inbox.IsTaken, "the turn is given back");
        inbox.Submit(new Op(0, 3));
        Assert.Equal("Run 0.3", inbox.Events[^2]);
    }

    [Fact]
    public void A_sealed_turn_runs_what_was_pushed_before_and_then_refuses_every_op_and_every_take()
    {
        var inbox = new RecordingInbox();
        Assert.True(inbox.TryTake());
        inbox.Submit(new Op(0, 0));

        inbox.Seal();
        inbox.GiveBack();

        Assert.Equal(["Taken", "Pushed", "After push", "Run 0.0", "Resting"], inbox.Events);
        Assert.True(inbox.IsSealed);
        Assert.False(inbox.IsTaken);
        Assert.False(inbox.Submit(new Op(0, 1)), "a sealed turn takes no op: its caller handles it");
        Assert.False(inbox.TryTake());
        Assert.Equal(5, inbox.Events.Length);
    }

    [Fact]
    public void TryTake_fails_while_the_turn_is_taken_and_succeeds_once_it_is_given_back()
    {
        var inbox = new RecordingInbox();
        Assert.True(inbox.TryTake());

        Assert.False(inbox.TryTake(), "a second owner while the first holds the turn");
        inbox.Submit(new Op(0, 0));
        Assert.False(inbox.TryTake(), "a pushed op keeps the turn taken");

        inbox.GiveBack();
        Assert.True(inbox.TryTake(), "the turn was given back");
        inbox.GiveBack();
        Assert.Equal(["Taken", "Pushed", "After push", "Run 0.0", "Resting", "Taken", "Resting"], inbox.Events);
    }

    [Fact]
    public void An_op_pushed_while_the_owner_rests_makes_the_give_back_fail_and_the_owner_takes_again_before_running_it()
    {
        var inbox = new RecordingInbox();
        var late = new Op(1, 0);
        inbox.OnFirstResting = () => inbox.Submit(late); // the turn is still taken: pushed, as by a racing caller

        inbox.Submit(new Op(0, 0));

        Assert.Equal(["Taken", "Run 0.0", "Resting", "Pushed", "After push", "Taken", "Run 1.0", "Resting"], inbox.Events);
        Assert.Equal(1, late.Runs);
        Assert.False(inbox.IsTaken);
    }

    [Fact]
    public void An_owner_that_served_its_throughput_hands_the_rest_to_the_pool_and_returns_and_every_op_still_runs_once_in_order()
    {
        // Each op pushes the next from inside the turn, so the stack is never empty when the owner looks: without the
        // hand-off, the caller of the first op would run all of them itself.
        const int Chain = 20 * TurnInbox.Throughput;
        var inbox = new RecordingInbox { RecordEvents = false };
        var ran = new Op[Chain];
        var ranOnCaller = 0;
        for (var i = 0; i < Chain; i++)
        {
            ran[i] = new Op(0, i);
        }

        inbox.OnRun = op =>
        {
            if (RecordingInbox.InSubmit)
            {
                ranOnCaller++;
            }

            if (op.Sequence + 1 < Chain)
            {
                inbox.Submit(ran[op.Sequence + 1]);
            }
        };

        RecordingInbox.InSubmit = true;
        try
        {
            inbox.Submit(ran[0]);
        }
        finally
        {
            RecordingInbox.InSubmit = false;
        }

        Assert.True(ranOnCaller <= TurnInbox.Throughput + 1,
                    $"the submitting caller ran {ranOnCaller} ops: it should hand its turn to the pool after {TurnInbox.Throughput} of others");
        WaitUntil(() => inbox.RunCount == Chain && !inbox.IsTaken, () => $"{inbox.RunCount} of {Chain} ops ran (taken: {inbox.IsTaken})");
        Assert.All(ran, op => Assert.Equal(1, op.Runs));
        Assert.Equal(Enumerable.Range(0, Chain), inbox.RunOrder.Select(op => op.Sequence));
        Assert.Equal(0, inbox.ProtocolViolations);
    }
}
