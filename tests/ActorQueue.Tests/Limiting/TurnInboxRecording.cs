using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>The recording inbox, ops, guarded threads and bounded waits the turn protocol tests share.</summary>
internal static class TurnInboxRecording
{
    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>A thread whose exception is kept for the test instead of crashing the test host.</summary>
    internal static Thread Guarded(ConcurrentQueue<Exception> failures, Action body) => new(() =>
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
    internal static void WaitUntil(Func<bool> condition, Func<string> because)
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
    internal sealed class Op(int pusher, int sequence) : ITurnOp
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
    internal sealed class RecordingInbox : TurnInbox
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
