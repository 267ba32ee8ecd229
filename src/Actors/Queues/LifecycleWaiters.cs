using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The callers waiting on the queue's lifecycle: joins, answered once nothing accepted is unfinished, and stops,
/// answered once the queue is stopped with no worker left. Only the router actor touches it.
/// </summary>
/// <param name="system">
/// The actor system, on whose scheduler a disposal's waits are timed (so a test's virtual clock times them too), and
/// which ends them when it terminates (its scheduler drops what it holds); <c>null</c> for the process's timers.
/// </param>
/// <param name="overdue">
/// Called (off the router's thread) when the <see cref="DisposalDeadline"/> passes, so a router that cannot keep to it
/// otherwise (the durable one, recovering or restarted) stops waiting then; <c>null</c> for none.
/// </param>
[DebuggerDisplay("{_joiners.Count} joins, {_stoppers.Count} stops waiting")]
internal sealed class LifecycleWaiters(ActorSystem? system = null, Action? overdue = null)
{
    /// <summary>Joins waiting for every accepted item to finish.</summary>
    private readonly List<JoinQueue> _joiners = [];

    /// <summary>Stops waiting for the last worker to go.</summary>
    private readonly List<StopQueue> _stoppers = [];

    /// <summary>Whether a stop asked the router to terminate once stopped (dispose).</summary>
    public bool TerminateWhenStopped => DisposeTimeout is not null;

    /// <summary>The timeout of the stop that asked the router to terminate (the disposal's); <c>null</c> before one did.</summary>
    public TimeSpan? DisposeTimeout { get; private set; }

    /// <summary>
    /// Completes twice the disposal's timeout after its stop came (<see cref="DisposalCame"/>, or <see cref="AddStopper"/>):
    /// the documented bound of a disposal, the grace period and then the cancelled work; never, before a disposal or with
    /// an infinite timeout.
    /// </summary>
    public Task DisposalDeadline { get; private set; } = Task.Delay(Timeout.Infinite);

    /// <summary>Whether a disposal's stop has come (its <see cref="DisposalDeadline"/> runs from then).</summary>
    private bool _disposalCame;

    /// <summary>Whether a stop waits for the last workers to go.</summary>
    public bool StopsWaiting => _stoppers.Count > 0;

    /// <summary>
    /// A join while the queue is not stopped: answered now when nothing is unfinished, else when nothing is. The joins
    /// whose callers gave up (cancelled) leave first, so a caller that joins with a timeout again and again on a queue
    /// that is never empty does not pile them up.
    /// </summary>
    public void Join(JoinQueue join, int unfinished)
    {
        _joiners.RemoveAll(static joiner => joiner.Completion.Task.IsCompleted);
        if (unfinished == 0)
        {
            join.Completion.TrySetResult(true);
        }
        else
        {
            _joiners.Add(join);
        }
    }

    /// <summary>A join on a stopped queue: answered now, failing when items are still pending (nothing would finish them).</summary>
    public static void JoinStopped(JoinQueue join, int unfinished)
    {
        if (unfinished == 0)
        {
            join.Completion.TrySetResult(true);
        }
        else
        {
            join.Completion.TrySetException(StoppedWithPending(unfinished));
        }
    }

    /// <summary>Something finished: when nothing is unfinished any more, every join completes.</summary>
    public void Settled(int unfinished)
    {
        if (unfinished > 0 || _joiners.Count == 0)
        {
            return;
        }

        foreach (var joiner in _joiners)
        {
            joiner.Completion.TrySetResult(true);
        }

        _joiners.Clear();
    }

    /// <summary>A stop waits for the queue to be stopped; one that asks to terminate makes the router stop itself then.</summary>
    public void AddStopper(StopQueue stop)
    {
        if (stop.Terminate && DisposeTimeout is null)
        {
            DisposeTimeout = stop.Timeout;
            DisposalCame(stop.Timeout);
        }

        _stoppers.Add(stop);
    }

    /// <summary>
    /// A disposal's stop with <paramref name="timeout"/> has come, though the router cannot take it yet (it recovers, or
    /// waits for a write to restart): its <see cref="DisposalDeadline"/> runs from now, and not again when the stop is taken.
    /// </summary>
    public void DisposalCame(TimeSpan timeout)
    {
        if (_disposalCame)
        {
            return;
        }

        _disposalCame = true;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            DisposalDeadline = Delay(timeout * 2);
            if (overdue is not null)
            {
                _ = DisposalDeadline.ContinueWith(static (_, state) => ((Action)state!)(), overdue, CancellationToken.None,
                    TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    /// <summary>The queue stopped with <paramref name="unfinished"/> items pending: the joins fail, naming the count.</summary>
    public void FailJoins(int unfinished)
    {
        if (unfinished == 0)
        {
            return;
        }

        foreach (var joiner in _joiners)
        {
            joiner.Completion.TrySetException(StoppedWithPending(unfinished));
        }

        _joiners.Clear();
    }

    /// <summary>The queue is stopped with no worker left: every stop completes.</summary>
    public void CompleteStops()
    {
        foreach (var stopper in _stoppers)
        {
            stopper.Completion.TrySetResult(true);
        }

        _stoppers.Clear();
    }

    /// <summary>
    /// As <see cref="CompleteStops"/>, once <paramref name="reported"/> has completed (the discarded items of a disposal
    /// have reached the error handler) or the disposal's timeout has passed, whichever comes first, so an error handler
    /// that never completes cannot hold a disposal (and a host's shutdown) for ever; the reports go on after it. Never
    /// past the <see cref="DisposalDeadline"/> either: a worker that returned late in its last timeout, then the reports
    /// for a whole timeout more, made it three times the stop timeout. The stops waiting now are taken out at once, so
    /// the router keeps no state for it.
    /// </summary>
    /// <param name="reported">The reports of the discarded items.</param>
    /// <param name="late">Called (off the router's thread) when the stops completed before the reports.</param>
    public void CompleteStopsAfter(Task reported, Action late)
    {
        var stoppers = _stoppers.ToArray();
        _stoppers.Clear();
        var bound = Delay(DisposeTimeout ?? TimeSpan.Zero); // the disposal's, though a stop of the user's may wait without limit
        var deadline = DisposalDeadline;
        _ = CompleteAsync();

        async Task CompleteAsync()
        {
            var inTime = reported == await Task.WhenAny(reported, bound, deadline).ConfigureAwait(false);
            foreach (var stopper in stoppers)
            {
                stopper.Completion.TrySetResult(true);
            }

            if (!inTime)
            {
                late();
            }
        }
    }

    /// <summary>The router is gone: the joins fail with <paramref name="disposed"/>.</summary>
    public void FailJoins(Exception disposed)
    {
        foreach (var joiner in _joiners)
        {
            joiner.Completion.TrySetException(disposed);
        }

        _joiners.Clear();
    }

    /// <summary>A task that completes after <paramref name="delay"/> (on the scheduler, when there is one); never, for an infinite one.</summary>
    private Task Delay(TimeSpan delay)
    {
        if (delay == Timeout.InfiniteTimeSpan)
        {
            return Task.Delay(Timeout.Infinite);
        }

        if (delay <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }

        // Under timers' limit (about 49.7 days): a longer timeout is an infinite one (QueueArguments), twice one just under it is not.
        delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds, int.MaxValue - 1));
        if (system is null)
        {
            return Task.Delay(delay);
        }

        var elapsed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); // never continued on the scheduler's thread
        try
        {
            system.Scheduler.Advanced.ScheduleOnce(delay, () => elapsed.TrySetResult());
        }
        catch (SchedulerException)
        {
            return Task.Delay(delay); // the actor system is shutting down: its scheduler takes nothing more
        }

        // A terminating system's scheduler drops what it holds: a disposal waiting for its discarded items' reports
        // then never completed (review h147). The system's end ends the wait (WhenAny leaves no continuation on
        // WhenTerminated once the delay has elapsed).
        return Task.WhenAny(elapsed.Task, system.WhenTerminated);
    }

    private static QueueStateException StoppedWithPending(int pending) =>
        new($"Cannot join a stopped queue with {pending} pending items; start it again to process them, or drain them", QueueStatus.Stopped);
}
