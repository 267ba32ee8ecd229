using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The turn protocol of <see cref="TurnInbox"/> on its own, through a subclass that records its hooks: every op
/// runs once, a pusher's ops in its order, one thread in a turn at a time, <c>Resting</c> before every give-back and
/// <c>Taken</c> again after one that failed, and an owner that served <see cref="TurnInbox.Throughput"/> ops of
/// others hands the rest of its turn to the pool and returns.
/// </summary>
public sealed class TurnInboxTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

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

    /// <summary>A thread whose exception is kept for the test instead of crashing the test host.</summary>
    private static Thread Guarded(ConcurrentQueue<Exception> failures, Action body) => new(() =>
    {
        try
        {
            body();
        }
        catch (Exception error)
        {
            failures.Enqueue(error);
        }
    });

    /// <summary>A bounded wait for a state the pool reaches (no actor here, so no test kit).</summary>
    private static void WaitUntil(Func<bool> condition, Func<string> because)
    {
        var deadline = DateTime.UtcNow + Patience;
        var spin = new SpinWait();
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting: {because()}");
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>One op: who pushed it, its place in that pusher's order, and how often it ran.</summary>
    private sealed class Op(int pusher, int sequence) : ITurnOp
    {
        private int _runs;

        public int Pusher { get; } = pusher;

        public int Sequence { get; } = sequence;

        public int Runs => Volatile.Read(ref _runs);

        public int RanOnThread { get; private set; }

        public ITurnOp? NextOp { get; set; }

        public void Ran()
        {
            RanOnThread = Environment.CurrentManagedThreadId;
            Interlocked.Increment(ref _runs);
        }

        public override string ToString() => $"{Pusher}.{Sequence}";
    }

    /// <summary>
    /// Records its hooks and checks the protocol as a state machine: <c>Taken</c> only from idle or after <c>Resting</c>
    /// (a give-back without a rest, or a second owner, breaks it); <c>Run</c> and <c>Resting</c> only after <c>Taken</c>
    /// (an op run after a rest, without taking the turn back, breaks it); one thread inside at a time.
    /// </summary>
    private sealed class RecordingInbox : TurnInbox
    {
        private const int Idle = 0;
        private const int Owned = 1;
        private const int Rested = 2;

        [ThreadStatic]
        private static bool _inSubmit;

        private readonly ConcurrentQueue<string> _events = new();
        private readonly List<Op> _runOrder = [];
        private int _state = Idle;
        private int _inside;
        private int _maxInside;
        private int _violations;
        private int _runCount;
        private int _taken;
        private int _resting;

        /// <summary>Marks the test's own call to Submit (to count the ops its thread ran).</summary>
        public static bool InSubmit { get => _inSubmit; set => _inSubmit = value; }

        public bool RecordEvents { get; init; } = true;

        /// <summary>Widens the window between the owner's last look at the word and its give-back, where pushes race it.</summary>
        public int RestingSpins { get; init; }

        public Action? OnFirstResting { get; set; }

        public Action<Op>? OnRun { get; set; }

        public string[] Events => [.. _events];

        /// <summary>The ops in the order they ran (written inside turns only).</summary>
        public List<Op> RunOrder => _runOrder;

        public int RunCount => Volatile.Read(ref _runCount);

        public int MaxInside => Volatile.Read(ref _maxInside);

        public int ProtocolViolations => Volatile.Read(ref _violations);

        public int TakenCount => Volatile.Read(ref _taken);

        public int RestingCount => Volatile.Read(ref _resting);

        /// <summary>Runs <paramref name="work"/> as if it were an op: counted inside the turn.</summary>
        public void Inside(Action work)
        {
            Enter();
            try
            {
                work();
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }

        protected override void Taken()
        {
            Interlocked.Increment(ref _taken);
            Expect(Interlocked.Exchange(ref _state, Owned) is Idle or Rested, "Taken while another owner had not rested");
            Record("Taken");
        }

        protected override void Run(ITurnOp op)
        {
            var mine = (Op)op;
            Enter();
            try
            {
                Expect(Volatile.Read(ref _state) == Owned, $"Run {mine} without taking the turn (after a rest)");
                mine.Ran();
                _runOrder.Add(mine);
                Record($"Run {mine}");
                OnRun?.Invoke(mine);
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }

            Interlocked.Increment(ref _runCount);
        }

        protected override void Resting()
        {
            Interlocked.Increment(ref _resting);
            Expect(IsTaken, "Resting while the turn is not taken");
            Expect(Interlocked.Exchange(ref _state, Rested) == Owned, "Resting without taking the turn");
            Record("Resting");
            if (RestingSpins > 0)
            {
                Thread.SpinWait(RestingSpins);
            }

            if (OnFirstResting is { } once)
            {
                OnFirstResting = null;
                once();
            }
        }

        /// <summary>The fast release, from outside (it is protected).</summary>
        public bool ReleaseNow(int permits) => TryReleaseNow(permits);

        protected override void RunReleaseNow(int permits)
        {
            Enter();
            try
            {
                Expect(IsTaken, "A release ran while the turn is not taken");
                Record($"Release {permits} now");
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }

        protected override void Pushing() => Record("Pushed");

        protected override void Pushed() => Record("After push");

        protected override void Faulted(ITurnOp? op, Exception error) => Record($"Faulted {op?.ToString() ?? "bookkeeping"}: {error.Message}");

        /// <summary>Seals the turn at its give-back (the owner's call, as a sweep's drop makes it).</summary>
        public void Seal() => SealOnGiveBack();

        private void Enter()
        {
            var inside = Interlocked.Increment(ref _inside);
            Poll.InterlockedMax(ref _maxInside, inside);
        }

        private void Record(string what)
        {
            if (RecordEvents)
            {
                _events.Enqueue(what);
            }
        }

        private void Expect(bool holds, string violation)
        {
            if (!holds)
            {
                Interlocked.Increment(ref _violations);
                Record($"VIOLATION {violation}");
            }
        }
    }
}
