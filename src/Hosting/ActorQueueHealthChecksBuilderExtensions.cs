using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace ActorQueue.Hosting;

/// <summary>Adds ActorQueue's health check to the host's health checks.</summary>
public static class ActorQueueHealthChecksBuilderExtensions
{
    /// <summary>The name <see cref="AddActorQueue"/> registers its check under unless told otherwise.</summary>
    public const string DefaultName = "actorqueue";

    /// <summary>
    /// Adds <see cref="ActorQueueHealthCheck"/>: unhealthy (or <paramref name="failureStatus"/>) until the host has
    /// started (without making anything before it does) and once it is stopping or ActorQueue's actor system has
    /// terminated or is shutting down (its coordinated shutdown has begun, or its actors are stopping), degraded while a named queue is full, a named limiter turns callers away or a
    /// queue stopped while the host runs. Needs
    /// <see cref="ActorQueueServiceCollectionExtensions.AddActorQueue(IServiceCollection)"/> (the check reads its
    /// <see cref="ActorQueueRegistry"/>).
    /// </summary>
    /// <param name="builder">The health checks builder (<c>services.AddHealthChecks()</c>).</param>
    /// <param name="name">The check's name; <see cref="DefaultName"/> by default.</param>
    /// <param name="failureStatus">What the check reports when ActorQueue has stopped; <see cref="HealthStatus.Unhealthy"/> by default.</param>
    /// <param name="tags">Tags to filter the check by (for example a readiness probe's).</param>
    /// <returns><paramref name="builder"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or white space; the message gives it.</exception>
    public static IHealthChecksBuilder AddActorQueue(this IHealthChecksBuilder builder, string name = DefaultName, HealthStatus? failureStatus = null,
                                                     IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(name,
            provider => new ActorQueueHealthCheck(provider.GetService<IHostApplicationLifetime>(), provider.GetRequiredService<ActorQueueRegistry>),
            failureStatus, tags));
    }
}
