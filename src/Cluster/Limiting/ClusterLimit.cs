using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>A cluster limiter's bounds as a node creates it (a later resize changes the gatekeeper's, not these).</summary>
/// <param name="MaxRunning">How many permits there are cluster-wide.</param>
/// <param name="MaxQueued">How many may wait cluster-wide; <c>null</c> for no bound.</param>
/// <param name="WaitTimeout">How long a caller of this node waits by default; <c>null</c> for ever.</param>
/// <param name="WhenFull">What a full queue does with a newcomer.</param>
internal sealed record ClusterLimit(int MaxRunning, int? MaxQueued, TimeSpan? WaitTimeout, QueueFullMode WhenFull)
{
    /// <summary>The bounds in the words of an error message.</summary>
    public override string ToString() =>
        $"maxRunning={MaxRunning}, maxQueued={MaxQueued?.ToString() ?? "null"}, waitTimeout={WaitTimeout?.ToString() ?? "null"}, whenFull={WhenFull}";
}

/// <summary>
/// The current limit of a cluster limiter as its node's agent last heard it, for synchronous reads by the facade. One
/// writer (the agent); the pair is one immutable record, so a reader never sees half of a resize.
/// </summary>
internal sealed class LimitMirror(int maxRunning, int? maxQueued)
{
    /// <summary>The limit now.</summary>
    private LimitChanged _current = LimitChanged.None with { MaxRunning = maxRunning, MaxQueued = maxQueued };

    /// <summary>The limit as of the last resize the agent heard of.</summary>
    public LimitChanged Current => Volatile.Read(ref _current);

    /// <summary>Called by the agent only.</summary>
    public void Publish(LimitChanged limit) => Volatile.Write(ref _current, limit);
}

/// <summary>The argument checks of the cluster limiters' facades: each error names the parameter and the value.</summary>
internal static class ClusterArguments
{
    /// <summary>A request's permits: at least 1, at most <paramref name="maxRunning"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Otherwise.</exception>
    public static int Permits(int permits, int maxRunning, string parameterName) => permits switch
    {
        < 1 => throw new ArgumentOutOfRangeException(parameterName, permits, $"{parameterName} must be >= 1, got {permits}"),
        _ when permits > maxRunning => throw new ArgumentOutOfRangeException(parameterName, permits, $"{parameterName} must be <= max_running ({maxRunning}), got {permits}"),
        _ => permits,
    };

    /// <summary>How long a status or statistics ask waits for its answer when the caller gives no timeout.</summary>
    public static readonly TimeSpan DefaultAskTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A status or statistics ask's timeout: more than zero and finite, or <see cref="DefaultAskTimeout"/> for <c>null</c>.
    /// Akka's <c>Ask</c> takes zero or a negative value for no timeout at all, so an answer that never comes (the
    /// limiter disposed, the singleton gone) would be awaited for ever.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">It is zero, negative or infinite; names <paramref name="parameterName"/> and the value.</exception>
    public static TimeSpan AskTimeout(TimeSpan? value, string parameterName) =>
        value is { } given ? ActorQueue.Runtime.Timeouts.Period(given, parameterName) : DefaultAskTimeout;

    /// <summary>A resize's bounds: a running limit of at least 1 (named <paramref name="maxRunningName"/>), a queue bound of at least 0; <c>null</c> leaves either.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    public static ResizeLimiter Resize(int? maxRunning, int? maxQueued, string maxRunningName)
    {
        if (maxRunning is { } running)
        {
            LimitValidation.MaxRunning(running, maxRunningName);
        }

        LimitValidation.MaxQueued(maxQueued, nameof(maxQueued));
        return new ResizeLimiter(maxRunning, maxQueued);
    }

    /// <summary>
    /// Sends <paramref name="resize"/> (wrapped by <paramref name="routed"/>: a partition's is routed by key) through
    /// <paramref name="disposal"/> as a resize whose caller awaits its answer (<see cref="AwaitedResize"/>). The agent
    /// answers it (applied, or failed as it stops); if the facade's agent has stopped or stops before its answer (it
    /// failed and could not be made again, or something else stopped it), the resize lands in dead letters or is left
    /// unanswered, so the task fails with <see cref="InvalidOperationException"/> naming <paramref name="limiterName"/>
    /// as the agent's stop is heard (<see cref="FailIfAgentStops"/>), or with <see cref="ObjectDisposedException"/> when the
    /// agent stopped with its actor system (<see cref="SystemShutdown"/>). Before, its caller waited for ever
    /// (Review/ResizeSecondReadingRound39Tests). A partition's, routed by the parent to a key's agent that stops on its
    /// own while the parent lives on, is a dead letter too, and fails the same way as it is published
    /// (<see cref="AwaitedResize.Undelivered"/>: Review/PartitionAgentStoppedResizeRound40Tests).
    /// </summary>
    /// <remarks>
    /// A <paramref name="cancellationToken"/> cancelled before the call sends nothing: the task is cancelled (after the
    /// disposal check, as an acquire's). Sent anyway before, the resize was applied for a caller that had given up
    /// (Review/CancelledResizeRound41Tests).
    /// </remarks>
    /// <returns>Completes once the node heard the resize applied; fails if the limiter is disposed or its agent stops first; cancelled if the token was.</returns>
    /// <exception cref="ObjectDisposedException">Disposal of <paramref name="facade"/> has begun.</exception>
    public static Task AwaitResize(FacadeDisposal disposal, object facade, string limiterName, ResizeLimiter resize, Func<object, object> routed,
                                   CancellationToken cancellationToken)
    {
        disposal.ThrowIfDisposed(facade);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken); // before any side effect: nothing is sent
        }

        var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        disposal.Send(facade, routed(new AwaitedResize(resize, applied) { LimiterName = limiterName, SentTo = disposal.Agent })); // ahead of a dispose racing it, or ObjectDisposedException
        FailIfAgentStops(disposal.Agent, limiterName, resize, applied);
        return applied.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Fails <paramref name="applied"/> once <paramref name="agent"/> is heard stopped (at once if it has): an agent that
    /// stops answers what it booked first (its PostStop runs before its watchers hear of it), so this only fails a resize
    /// it never took. The watch ends when the answer comes.
    /// </summary>
    private static void FailIfAgentStops(IActorRef agent, string limiterName, ResizeLimiter resize, TaskCompletionSource applied)
    {
        var answered = new CancellationTokenSource();
        _ = applied.Task.ContinueWith(static (_, state) =>
        {
            using var watch = (CancellationTokenSource)state!;
            watch.Cancel();
        }, answered, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default); // asynchronous: the answer's continuations never run inline
        _ = agent.WatchAsync(answered.Token).ContinueWith(stopped =>
        {
            if (stopped.IsCompletedSuccessfully && stopped.Result)
            {
                applied.TrySetException(SystemShutdown.IsUnderway(agent)
                    ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter),
                        $"The actor system of cluster limiter '{limiterName}' is shutting down: its node agent stopped before its resize ({resize.Bounds}) was heard applied.")
                    : new InvalidOperationException(
                        $"The node agent of cluster limiter '{limiterName}' has stopped before its resize ({resize.Bounds}) was heard applied: " +
                        "the resize may not have been sent, and nobody sends it again"));
            }
        }, CancellationToken.None, TaskContinuationOptions.RunContinuationsAsynchronously, TaskScheduler.Default);
    }

    /// <summary>A wait timeout: zero or more, or infinite (over-long means infinite).</summary>
    /// <exception cref="ArgumentOutOfRangeException">It is negative and not infinite.</exception>
    public static TimeSpan WaitTimeout(TimeSpan value, string parameterName) => ActorQueue.Runtime.Timeouts.Normalize(value, parameterName);
}

/// <summary>
/// The disposal of a cluster limiter's facade: once, it frees the name on the node and stops the node's agent, behind
/// every call that passed its check. A call that sends its message through <see cref="Send"/> either throws
/// <see cref="ObjectDisposedException"/> or has its message in the agent's mailbox before the stop: a resize that
/// returned is taken by the agent and sent on to the gatekeeper. (Checked and then sent, a resize that lost the race
/// with the dispose landed behind the stop, a dead letter: its call neither applied nor failed. Review/ClusterLeftoversReviewTests.)
/// Lock-free: the calls on their way are counted with the disposed flag in one word, and the stop is sent by the
/// disposal if none is on its way, else by the last of them as it leaves.
/// </summary>
internal sealed class FacadeDisposal(IActorRef agent)
{
    /// <summary>The flag in <see cref="_state"/>: disposal has begun.</summary>
    private const int Disposed = 1;

    /// <summary>One call on its way, in <see cref="_state"/>.</summary>
    private const int OneCall = 2;

    /// <summary><see cref="Disposed"/>, plus <see cref="OneCall"/> for each call between its check and its message's send.</summary>
    private int _state;

    /// <summary>The stop, made up front: whoever sends it, every disposal call awaits the same one.</summary>
    private readonly DisposeGatekeeper _stop = new();

    /// <summary>The agent the facade's messages and its stop go to.</summary>
    public IActorRef Agent => agent;

    /// <summary>Whether disposal has begun.</summary>
    public bool IsDisposed => (Volatile.Read(ref _state) & Disposed) != 0;

    /// <exception cref="ObjectDisposedException">Disposal of <paramref name="facade"/> has begun.</exception>
    public void ThrowIfDisposed(object facade) => ObjectDisposedException.ThrowIf(IsDisposed, facade);

    /// <summary>Sends <paramref name="message"/> to the agent ahead of its stop, unless disposal has begun.</summary>
    /// <exception cref="ObjectDisposedException">Disposal of <paramref name="facade"/> has begun.</exception>
    public void Send(object facade, object message)
    {
        var state = Volatile.Read(ref _state);
        while (true)
        {
            ObjectDisposedException.ThrowIf((state & Disposed) != 0, facade);
            var seen = Interlocked.CompareExchange(ref _state, state + OneCall, state);
            if (seen == state)
            {
                break;
            }

            state = seen;
        }

        try
        {
            agent.Tell(message, ActorRefs.NoSender);
        }
        finally
        {
            if (Interlocked.Add(ref _state, -OneCall) == Disposed)
            {
                agent.Tell(_stop, ActorRefs.NoSender); // the last call on its way once disposal began: the stop goes behind it
            }
        }
    }

    /// <summary>Begins disposal once: frees the name (<paramref name="onDisposed"/>) and stops the agent behind the calls on their way.</summary>
    /// <returns>Completes when the agent has stopped (a repeated call returns the same).</returns>
    public Task Stop<TFacade>(TFacade facade, Action<TFacade> onDisposed)
    {
        var state = Volatile.Read(ref _state);
        while (true)
        {
            if ((state & Disposed) != 0)
            {
                return _stop.Stopped.Task;
            }

            var seen = Interlocked.CompareExchange(ref _state, state | Disposed, state);
            if (seen == state)
            {
                break;
            }

            state = seen;
        }

        onDisposed(facade);
        if (state == 0)
        {
            agent.Tell(_stop, ActorRefs.NoSender); // no call on its way: else the last one sends it as it leaves
        }

        return _stop.Stopped.Task;
    }
}
