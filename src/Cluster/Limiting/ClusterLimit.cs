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

    /// <summary>A wait timeout: zero or more, or infinite (over-long means infinite).</summary>
    /// <exception cref="ArgumentOutOfRangeException">It is negative and not infinite.</exception>
    public static TimeSpan WaitTimeout(TimeSpan value, string parameterName) => ActorQueue.Runtime.Timeouts.Normalize(value, parameterName);
}

/// <summary>The disposal of a cluster limiter's facade: once, it frees the name on the node and stops the node's agent.</summary>
internal static class AgentStop
{
    /// <summary>Stops <paramref name="agent"/> unless <paramref name="disposed"/> was set already.</summary>
    /// <returns>Completes when the agent has stopped (at once for a repeated call).</returns>
    public static Task Stop<TFacade>(ref int disposed, TFacade facade, Action<TFacade> onDisposed, IActorRef agent)
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return Task.CompletedTask;
        }

        onDisposed(facade);
        var dispose = new DisposeGatekeeper();
        agent.Tell(dispose, ActorRefs.NoSender);
        return dispose.Stopped.Task;
    }
}
