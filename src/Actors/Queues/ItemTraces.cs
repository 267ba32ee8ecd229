using System.Diagnostics;
using System.Runtime.CompilerServices;
using ActorQueue.Telemetry;

namespace ActorQueue.Actors;

/// <summary>
/// The producer's trace context, carried with each item from the put to the worker that runs it, only while someone
/// listens to ActorQueue's spans: an untraced put stores nothing and allocates nothing. The router keeps contexts beside
/// its buffered items (<see cref="ItemDeque{T}"/>); a run handed to a worker carries them in this table, keyed by the
/// run's array, so the run's path (slot, pool, hand-over, settlement) is unchanged.
/// </summary>
internal static class ItemTraces
{
    /// <summary>The contexts of runs that hold a traced item. Written by the router before it hands the run over (a
    /// release), read by the worker's task after it took the run; weak, so a run let go takes its contexts along.</summary>
    private static readonly ConditionalWeakTable<object, ActivityContext[]> s_runs = new();

    /// <summary>Set once any run carried a context, so a worker of an untraced process never looks one up.</summary>
    private static volatile bool s_any;

    /// <summary>
    /// Facade: the caller's context when the caller runs under an activity and someone listens to ActorQueue's spans;
    /// otherwise <c>default</c>, which stores nothing.
    /// </summary>
    public static ActivityContext Capture() =>
        Activity.Current is { } current && ActorQueueTelemetry.Source.HasListeners() ? current.Context : default;

    /// <summary>Router: the run's items carry these contexts (index for index).</summary>
    public static void Attach(object run, ActivityContext[] contexts)
    {
        s_any = true;
        s_runs.AddOrUpdate(run, contexts);
    }

    /// <summary>The contexts the run's items carry, or <c>null</c> when none does.</summary>
    public static ActivityContext[]? Of(object run) => s_any && s_runs.TryGetValue(run, out var contexts) ? contexts : null;

    /// <summary>
    /// <c>GetAsync</c>: records that the taker received an item carrying <paramref name="producer"/>, as a
    /// <c>receive {queue}</c> consumer span (of no length: the moment of receipt) linked to the producer's context. It is
    /// a child of the taker's current activity, so it shows in the taker's trace; a taker with none gets it as a child
    /// of the producer's context instead, in the producer's trace. The taker's current activity is left as it was: what
    /// the taker does with the item is its own to trace.
    /// </summary>
    public static void Received(string queueName, ActivityContext producer)
    {
        var taker = Activity.Current;
        using (ActorQueueTelemetry.Source.StartActivity(
                   $"receive {queueName}",
                   ActivityKind.Consumer,
                   taker?.Context ?? producer,
                   [new KeyValuePair<string, object?>(ActorQueueTelemetry.QueueNameTag, queueName)],
                   [new ActivityLink(producer)]))
        {
        }

        Activity.Current = taker;
    }

    /// <summary>
    /// Worker: starts the span of one item, a consumer span under the producer's context, and makes it
    /// <see cref="Activity.Current"/>; <c>null</c> (and nothing started) when the item carries no context.
    /// </summary>
    public static Activity? StartProcessing(string spanName, string queueName, ActivityContext parent) =>
        parent == default
            ? null
            : ActorQueueTelemetry.Source.StartActivity(
                spanName,
                ActivityKind.Consumer,
                parent,
                [new KeyValuePair<string, object?>(ActorQueueTelemetry.QueueNameTag, queueName)]);
}
