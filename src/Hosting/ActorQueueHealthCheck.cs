using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace ActorQueue.Hosting;

/// <summary>
/// ActorQueue's health for the host's health checks (<c>services.AddHealthChecks().AddActorQueue()</c>, served by
/// ASP.NET Core's <c>MapHealthChecks</c>). It reads counts the limiters and queues publish: no message is sent, no
/// thread waits.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><b>The registration's failure status</b> (unhealthy unless set otherwise): the host has not started yet (the
/// check registered by <see cref="ActorQueueHealthChecksBuilderExtensions.AddActorQueue"/> then makes nothing: not the
/// registry, not the actor system), or it is stopping; the actor system has terminated, its coordinated shutdown has
/// begun, or it is terminating without one (a <c>Terminate()</c> with <c>run-by-actor-system-terminate = off</c>: its
/// actors are stopping); or the registry is stopping — nothing new is taken on, so a load balancer should stop sending work.</item>
/// <item><b>Degraded</b>: a named queue is full (its puts wait), a named limiter turns new callers away (its queue of
/// waiters is full, or, for one that queues nobody, every permit is held; or the application disposed it), or a queue
/// the registry made is stopping or stopped while the host runs (its puts are refused). A queue made but not started
/// yet is the application's to start: it degrades nothing.</item>
/// <item><b>Healthy</b> otherwise.</item>
/// </list>
/// The description names every cause. The data hold, for each named limiter, <c>limiter.{name}.running</c> and
/// <c>.waiting</c>; for each queue made so far, <c>queue.{name}.status</c>, <c>.size</c>, <c>.processed</c>,
/// <c>.errors</c> and <c>.discarded</c>.
/// </remarks>
public sealed class ActorQueueHealthCheck : IHealthCheck
{
    /// <summary>What the check says once the host is stopping, before ActorQueue's own stop has begun.</summary>
    private const string HostStopping = "ActorQueue's host is stopping (its queues and limiters stop next)";

    /// <summary>The registry, resolved only once the host has started (<see cref="_lifetime"/>).</summary>
    private readonly Func<ActorQueueRegistry> _registry;

    /// <summary>The host's lifetime, for a check registered in one; <c>null</c> for a check made on a registry.</summary>
    private readonly IHostApplicationLifetime? _lifetime;

    /// <summary>A check of <paramref name="registry"/>, whatever host it runs in.</summary>
    /// <param name="registry">The host's named limiters and queues.</param>
    public ActorQueueHealthCheck(ActorQueueRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _registry = () => registry;
    }

    /// <summary>A check of the registry <paramref name="registry"/> resolves, which it calls only once <paramref name="lifetime"/>'s host has started.</summary>
    internal ActorQueueHealthCheck(IHostApplicationLifetime? lifetime, Func<ActorQueueRegistry> registry)
    {
        _lifetime = lifetime;
        _registry = registry;
    }

    /// <summary>Reads the actor system's, the limiters' and the queues' state; completes at once.</summary>
    /// <param name="context">The registration being checked (its failure status is what an unhealthy result reports).</param>
    /// <param name="cancellationToken">Not used: nothing waits.</param>
    /// <returns>The result, with the causes in its description and the counts in its data.</returns>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_lifetime is { ApplicationStarted.IsCancellationRequested: false } lifetime)
        {
            // Resolving the registry now would make the actor system and the limiters before the host does (or after a failed start).
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus,
                lifetime.ApplicationStopping.IsCancellationRequested ? HostStopping : "ActorQueue's host has not started yet"));
        }

        var registry = _registry();
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var degraded = new List<string>();
        foreach (var (name, limiter) in registry.Limiters)
        {
            var (running, waiting) = (limiter.RunningCount, limiter.WaitingCount);
            data[$"limiter.{name}.running"] = running;
            data[$"limiter.{name}.waiting"] = waiting;
            if (TurnsAway(limiter, running, waiting) is { } why)
            {
                degraded.Add($"limiter '{name}' turns new callers away ({running} running, {waiting} waiting: {why})");
            }
        }

        var queues = registry.QueueStates().OrderBy(queue => queue.Name, StringComparer.Ordinal).ToList();
        foreach (var queue in queues)
        {
            data[$"queue.{queue.Name}.status"] = queue.Status.ToString();
            data[$"queue.{queue.Name}.size"] = queue.Size;
            data[$"queue.{queue.Name}.processed"] = queue.Metrics.Processed;
            data[$"queue.{queue.Name}.errors"] = queue.Metrics.Errors;
            data[$"queue.{queue.Name}.discarded"] = queue.Metrics.Discarded;
            if (queue.Status is QueueStatus.Stopping or QueueStatus.Stopped)
            {
                degraded.Add($"queue '{queue.Name}' is {queue.Status.ToString().ToLowerInvariant()} (it takes no items)");
            }
            else if (queue.Size >= queue.Capacity)
            {
                degraded.Add($"queue '{queue.Name}' is full ({queue.Size} of {queue.Capacity}: puts wait)");
            }
        }

        var result = Stopped(registry) is { } stopped ? new HealthCheckResult(context.Registration.FailureStatus, stopped, data: data)
            : degraded.Count != 0 ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
            : HealthCheckResult.Healthy($"ActorQueue runs {registry.Limiters.Count} named limiter(s) and {queues.Count} queue(s)", data);
        return Task.FromResult(result);
    }

    /// <summary>
    /// Why a caller of <paramref name="limiter"/> asking for one permit would be refused now, if it would: a full queue of
    /// waiters refuses it even with a permit free (nobody passes a waiter, and one asking for more permits than are free
    /// waits), and a limiter that queues nobody refuses it while every permit is held.
    /// </summary>
    private static string? TurnsAway(ConcurrencyLimiter limiter, int running, int waiting) =>
        limiter.IsDisposed ? "it is disposed" // by the application: the registry's own disposal comes with its stop
        : limiter.MaxQueued is not { } maxQueued || waiting < maxQueued ? null
        : waiting > 0 ? $"its queue of {maxQueued} is full"
        : running >= limiter.MaxRunning ? "every permit is held and it queues nobody"
        : null;

    /// <summary>
    /// Why ActorQueue takes on nothing new, if it does not: its actor system ended or is ending, the registry is
    /// stopping, or the host is.
    /// </summary>
    private string? Stopped(ActorQueueRegistry registry)
    {
        var system = registry.System;
        if (system.WhenTerminated.IsCompleted)
        {
            return $"ActorQueue's actor system '{system.Name}' has terminated";
        }

        // Only an extension that exists: making it (CoordinatedShutdown.Get) would hook the process's exit when the
        // system's run-by-clr-shutdown-hook is on. A coordinated shutdown runs through it, so one not made has not begun.
        if (system.HasExtension<CoordinatedShutdown>() && CoordinatedShutdown.Get(system).ShutdownReason is { } reason)
        {
            return $"ActorQueue's actor system '{system.Name}' is shutting down ({reason})";
        }

        // A Terminate() that skips the coordinated shutdown (run-by-actor-system-terminate off), and the shutdown's own last
        // phase, stop the user guardian: it stops its actors (the limiters' and the queues' among them) and ends once they
        // have, long before the system has terminated when one of them takes its time. Read as soon as the guardian has
        // taken its stop (a moment after Terminate() returns).
        if (UserGuardianStopping(system))
        {
            return $"ActorQueue's actor system '{system.Name}' is terminating (its actors are stopping)";
        }

        return registry.IsStopping ? "ActorQueue is stopping its queues and limiters (the host is shutting down)"
            : _lifetime is { ApplicationStopping.IsCancellationRequested: true } ? HostStopping
            : null;
    }

    /// <summary>
    /// Whether <paramref name="system"/>'s user guardian has taken its stop: it is stopping its actors or has stopped. Its
    /// children container reads as terminating from then on (a stop of one child alone does not), and its mailbox closes
    /// once it has stopped.
    /// </summary>
    private static bool UserGuardianStopping(ActorSystem system) =>
        system is ExtendedActorSystem { Guardian: LocalActorRef { Cell: { IsTerminated: true } or { ChildrenContainer.IsTerminating: true } } };
}
