using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ActorQueue.Hosting;

/// <summary>
/// ActorQueue's health for the host's health checks (<c>services.AddHealthChecks().AddActorQueue()</c>, served by
/// ASP.NET Core's <c>MapHealthChecks</c>). It reads counts the limiters and queues publish: no message is sent, no
/// thread waits.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><b>The registration's failure status</b> (unhealthy unless set otherwise): the actor system has terminated or
/// its coordinated shutdown has begun, or the registry is stopping (the host is shutting down) — nothing new is taken
/// on, so a load balancer should stop sending work.</item>
/// <item><b>Degraded</b>: a named queue is full (its puts wait), a named limiter turns new callers away (its running
/// and waiting counts are at their bounds), or a queue the registry made is stopping or stopped while the host runs (its
/// puts are refused). A queue made but not started yet is the application's to start: it degrades nothing.</item>
/// <item><b>Healthy</b> otherwise.</item>
/// </list>
/// The description names every cause. The data hold, for each named limiter, <c>limiter.{name}.running</c> and
/// <c>.waiting</c>; for each queue made so far, <c>queue.{name}.status</c>, <c>.size</c>, <c>.processed</c>,
/// <c>.errors</c> and <c>.discarded</c>.
/// </remarks>
/// <param name="registry">The host's named limiters and queues.</param>
public sealed class ActorQueueHealthCheck(ActorQueueRegistry registry) : IHealthCheck
{
    private readonly ActorQueueRegistry _registry = registry ?? throw new ArgumentNullException(nameof(registry));

    /// <summary>Reads the actor system's, the limiters' and the queues' state; completes at once.</summary>
    /// <param name="context">The registration being checked (its failure status is what an unhealthy result reports).</param>
    /// <param name="cancellationToken">Not used: nothing waits.</param>
    /// <returns>The result, with the causes in its description and the counts in its data.</returns>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var degraded = new List<string>();
        foreach (var (name, limiter) in _registry.Limiters)
        {
            var (running, waiting) = (limiter.RunningCount, limiter.WaitingCount);
            data[$"limiter.{name}.running"] = running;
            data[$"limiter.{name}.waiting"] = waiting;
            if (limiter.MaxQueued is { } maxQueued && running >= limiter.MaxRunning && waiting >= maxQueued)
            {
                degraded.Add($"limiter '{name}' turns new callers away ({running} running, {waiting} waiting: both at their bounds)");
            }
        }

        var queues = _registry.QueueStates().OrderBy(queue => queue.Name, StringComparer.Ordinal).ToList();
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

        var result = Stopped() is { } stopped ? new HealthCheckResult(context.Registration.FailureStatus, stopped, data: data)
            : degraded.Count != 0 ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
            : HealthCheckResult.Healthy($"ActorQueue runs {_registry.Limiters.Count} named limiter(s) and {queues.Count} queue(s)", data);
        return Task.FromResult(result);
    }

    /// <summary>Why ActorQueue takes on nothing new, if it does not: its actor system ended or is ending, or the registry is stopping.</summary>
    private string? Stopped()
    {
        var system = _registry.System;
        if (system.WhenTerminated.IsCompleted)
        {
            return $"ActorQueue's actor system '{system.Name}' has terminated";
        }

        if (CoordinatedShutdown.Get(system).ShutdownReason is { } reason)
        {
            return $"ActorQueue's actor system '{system.Name}' is shutting down ({reason})";
        }

        return _registry.IsStopping ? "ActorQueue is stopping its queues and limiters (the host is shutting down)" : null;
    }
}
