using System.Threading.Tasks.Sources;

namespace ActorQueue.Actors;

/// <summary>
/// What a worker's task has finished of one run. Written by the task after each item, as one word, so the worker
/// actor's crash report reads completed and failed counts that belong together.
/// </summary>
internal sealed class RunProgress(long sequence)
{
    /// <summary>Items finished (high 32 bits) and failed among them (low 32 bits).</summary>
    private long _counts;

    public long Sequence { get; } = sequence;

    public (int Completed, int Failed) Counts
    {
        get
        {
            var counts = Volatile.Read(ref _counts);
            return ((int)(counts >> 32), (int)counts);
        }
    }

    public void Report(int completed, int failed) => Volatile.Write(ref _counts, ((long)completed << 32) | (uint)failed);
}

/// <summary>
/// A worker's task and the run it works on, created by the router: the router sends it to the worker actor to start
/// a task, hands later runs to that task directly, and tells it to yield when the worker retires; the actor cancels
/// it (stop timeout, stop) or stops it for a crash; the task publishes its progress for a crash report.
/// </summary>
/// <remarks>
/// <para>After reporting, the task either finds the next run already handed over and goes on on its own thread, or
/// parks (no thread is held) until the router hands one over, which resumes it through the thread pool, or until
/// the worker stops. The router still decides what every worker holds; when it cannot hand over (the task has ended),
/// it sends the run to the worker actor, which starts a new task.</para>
/// <para>A shared-memory channel between three threads: the router actor, the worker actor and the task. Each value,
/// its writers and readers:</para>
/// <list type="bullet">
/// <item><c>_state</c>, the hand-over state machine. The task alone moves <c>Working → Reporting</c>
/// (<see cref="OpenForHandOver"/>) and <c>HandedOver → Working</c> (taking the run), when no other thread may change
/// the state. Out of <c>Reporting</c> or <c>Parked</c>, three threads race: the task parks
/// (<c>Reporting → Parked</c>, <see cref="NextAsync"/>), the router hands over (<c>→ HandedOver</c>,
/// <see cref="TryHandOver"/>), the worker actor closes (<c>→ Ended</c>, <see cref="Cancel"/>). Each of those moves is
/// a compare-and-swap, retried while the state is still one it may leave, so exactly one wins and a handed-over run is
/// taken exactly once.</item>
/// <item><c>_nextItems</c> and <c>_nextSequence</c>: written by the router before the compare-and-swap that publishes
/// <c>HandedOver</c>, read by the task only after it has seen <c>HandedOver</c>.</item>
/// <item><c>_park</c>: reset by the task before it tries to park; completed once, by whichever of hand-over and close
/// moves the state out of <c>Parked</c>.</item>
/// <item><c>_progress</c>: swapped by the task with a full fence when it takes a run; read by the worker actor for a
/// crash report. <c>_crashed</c>: set by the worker actor with a full fence before it reads <c>_progress</c>; read
/// by the task before each item. Dekker: either the crash report names the run the task took, or the task sees the
/// crash and starts no item of that run.</item>
/// <item><c>_yield</c>: set by the router when the worker retires, read by the task before each item; a volatile
/// flag suffices, since the task's report tells the router what was done.</item>
/// <item><see cref="Items"/>: the task's own after the constructor (the run reaches the worker actor in a
/// message).</item>
/// </list>
/// </remarks>
internal sealed class WorkerRun<T> : IValueTaskSource<bool>
{
    /// <summary>The task works on its run in hand.</summary>
    private const int Working = 0;

    /// <summary>The task has let go of its run and reports it; the router may hand over from now on.</summary>
    private const int Reporting = 1;

    /// <summary>The task waits, holding no thread, for a hand-over or a stop.</summary>
    private const int Parked = 2;

    /// <summary>The next run waits for the task to take it.</summary>
    private const int HandedOver = 3;

    /// <summary>The worker stopped while its task reported or waited: no hand-over any more.</summary>
    private const int Ended = 4;

    private readonly CancellationTokenSource _cancellation = new();

    /// <summary>Completes a parked task: <c>true</c> when a run was handed over, <c>false</c> when the worker stops.</summary>
    private ManualResetValueTaskSourceCore<bool> _park = new() { RunContinuationsAsynchronously = true };

    /// <summary>The run in hand's progress, replaced when the task takes a run.</summary>
    private RunProgress _progress;

    /// <summary>The run handed over, until the task takes it.</summary>
    private T[]? _nextItems;

    /// <summary>The sequence number of the run handed over.</summary>
    private long _nextSequence;

    /// <summary>Where the hand-over stands: <see cref="Working"/>, <see cref="Reporting"/>, <see cref="Parked"/>, <see cref="HandedOver"/> or <see cref="Ended"/>.</summary>
    private int _state;

    /// <summary>Set when the worker retires: the task starts no further item.</summary>
    private volatile bool _yield;

    /// <summary>1 once the worker actor crashed: no further item starts.</summary>
    private int _crashed;

    public WorkerRun(T[] items, long sequence)
    {
        Items = items;
        _progress = new RunProgress(sequence);
    }

    /// <summary>The items of the run in hand.</summary>
    public T[] Items { get; private set; }

    public CancellationToken Token => _cancellation.Token;

    /// <summary>What the task has finished of the run in hand.</summary>
    public RunProgress Progress => Volatile.Read(ref _progress);

    /// <summary>Whether the task should start no further item (and take no further run).</summary>
    public bool ShouldStop => _yield || Volatile.Read(ref _crashed) != 0 || _cancellation.IsCancellationRequested;

    /// <summary>
    /// Router: the worker retires; the task finishes the item in hand, starts no further item and hands back the rest.
    /// Only sets a flag, so the router calls it directly, before it answers the stop or the replacement.
    /// </summary>
    public void Yield() => _yield = true;

    /// <summary>Whether the worker actor crashed: the task reports nothing more, the crash report accounts for the run.</summary>
    public bool IsStoppedForCrash => Volatile.Read(ref _crashed) != 0;

    /// <summary>
    /// The worker actor crashed: no further item starts, the item in hand is cancelled, a parked task ends, and the
    /// progress returned is the run the task works on (both sides write with a full fence, so a task that takes a new
    /// run after this read sees the stop first). The stopped task reports nothing more.
    /// </summary>
    public RunProgress StopForCrash()
    {
        Interlocked.Exchange(ref _crashed, 1);
        var progress = Volatile.Read(ref _progress);
        Cancel();
        return progress;
    }

    /// <summary>
    /// Cancels the item in hand and ends a parked task (stop timeout, worker stopped). A finished run's source is
    /// never disposed early: cancelling it later is harmless.
    /// </summary>
    public void Cancel()
    {
        _cancellation.Cancel();
        Close();
    }

    /// <summary>Task: about to report (the finished items are let go); from now on the router may hand over.</summary>
    public void OpenForHandOver()
    {
        Items = [];
        Volatile.Write(ref _state, Reporting);
    }

    /// <summary>
    /// Task: after reporting, the next run: <c>true</c> at once if the router handed one over meanwhile, else
    /// <c>true</c> later when it does, or <c>false</c> when the worker stops. A run taken while stopping is reported
    /// straight back with nothing done, so it returns to the queue.
    /// </summary>
    public ValueTask<bool> NextAsync()
    {
        _park.Reset();
        switch (Interlocked.CompareExchange(ref _state, Parked, Reporting))
        {
            case Reporting:
                return new ValueTask<bool>(this, _park.Version);
            case HandedOver:
                TakeNext();
                return new ValueTask<bool>(true);
            default:
                return new ValueTask<bool>(false);
        }
    }

    /// <summary>
    /// Router: gives the next run to the task if it has reported and waits (or is about to); otherwise (it has ended,
    /// or is stopping) returns <c>false</c> and the router sends a new run to the worker actor instead.
    /// </summary>
    public bool TryHandOver(T[] items, long sequence)
    {
        while (!ShouldStop)
        {
            var state = Volatile.Read(ref _state);
            if (state is not (Reporting or Parked))
            {
                return false;
            }

            _nextItems = items;
            _nextSequence = sequence;
            if (Interlocked.CompareExchange(ref _state, HandedOver, state) == state)
            {
                if (state == Parked)
                {
                    _park.SetResult(true);
                }

                return true;
            }

            _nextItems = null;
        }

        return false;
    }

    /// <inheritdoc />
    public bool GetResult(short token)
    {
        var handedOver = _park.GetResult(token);
        if (handedOver)
        {
            TakeNext();
        }

        return handedOver;
    }

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _park.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _park.OnCompleted(continuation, state, token, flags);

    /// <summary>Ends a parked task, or one about to park: the router can no longer hand over.</summary>
    private void Close()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state is not (Reporting or Parked))
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _state, Ended, state) == state)
            {
                if (state == Parked)
                {
                    _park.SetResult(false);
                }

                return;
            }
        }
    }

    private void TakeNext()
    {
        Items = _nextItems!;
        _nextItems = null;
        Interlocked.Exchange(ref _progress, new RunProgress(_nextSequence));
        Volatile.Write(ref _state, Working);
    }
}
