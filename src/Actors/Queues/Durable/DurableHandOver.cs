using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// What a durable router instance hands the next one when it restarts (an exception on its thread): the work it
/// started, the items getters hold, the callers waiting on it, and whether it was processing. One object per router,
/// created with its props, so every instance Akka creates for that router sees the same one.
/// </summary>
/// <remarks>
/// Only the router's own instances touch it, one after the other: the failed instance fills it in
/// <c>PreRestart</c>/<c>PostStop</c>, and the next takes it in its constructor, on the same actor cell (Akka orders the
/// two). Before it existed, a restart left the queue idle without its workers while the facade still said it had them,
/// and the tries the failed instance had started ended in the next one, which had not started them: its count of busy
/// workers went below zero (one worker too many from then on) and an item it was running again was ended by the old
/// try's result (review 96).
/// </remarks>
internal sealed class DurableHandOver<T>
{
    private Handed? _handed;

    /// <summary>What one instance left for the next.</summary>
    /// <param name="Status">The status it had.</param>
    /// <param name="Spec">The workers it was told to run, if any.</param>
    /// <param name="Running">The items whose tries it started and that have not ended: their ends come to the next instance.</param>
    /// <param name="Taken">The items getters took and have not said are done, oldest first.</param>
    /// <param name="Traces">The producers' trace contexts it held.</param>
    /// <param name="RunCancellation">Cancels the tries in <paramref name="Running"/> (and the next instance's) at a stop's timeout.</param>
    /// <param name="Waiters">The joins and stops waiting.</param>
    /// <param name="Getters">The getters waiting for an item.</param>
    /// <param name="ResumeFailed">The instance failed while it took over from the one before it: the next one does not resume.</param>
    /// <param name="Backpressure">The queue's backpressure events so far (not journaled: a restart set the count back to 0).</param>
    /// <param name="StopDeadline">While stopping: when the stop's timeout runs out (on the scheduler's clock: <see cref="StopGrace.EndsAt"/>), <c>null</c> for a stop that waits for the tries without limit.</param>
    public sealed record Handed(
        QueueStatus Status,
        WorkerSpec<T>? Spec,
        IReadOnlyCollection<long> Running,
        IReadOnlyCollection<long> Taken,
        Dictionary<long, ActivityContext> Traces,
        CancellationTokenSource RunCancellation,
        LifecycleWaiters Waiters,
        WaiterQueue<GetRequest<T>> Getters,
        bool ResumeFailed,
        long Backpressure,
        TimeSpan? StopDeadline);

    /// <summary>The failed instance leaves <paramref name="handed"/> for the next.</summary>
    public void Leave(Handed handed)
    {
        Debug.Assert(_handed is null, "an instance that took nothing over left something before");
        _handed = handed;
    }

    /// <summary>What the previous instance left, once (<c>null</c> for the first instance).</summary>
    public Handed? Take()
    {
        var handed = _handed;
        _handed = null;
        return handed;
    }
}
