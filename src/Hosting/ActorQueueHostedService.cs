using ActorQueue.Runtime;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ActorQueue.Hosting;

/// <summary>
/// Ties ActorQueue to the host's lifetime. Registered after Akka.Hosting's service, it starts after the actor system
/// exists and stops before it terminates: on stop, the named queues stop (the host's token ends their grace period),
/// then queues and limiters are disposed, and the system stops being the facades' default. A host disposed without a
/// stop (its start failed after this service started) releases the default when the container disposes this service.
/// </summary>
internal sealed class ActorQueueHostedService(IServiceProvider services, IOptions<ActorQueueOptions> options, ILoggerFactory loggerFactory)
    : IHostedService, IDisposable
{
    private readonly ILogger _log = loggerFactory.CreateLogger("ActorQueue.Hosting");

    /// <summary>The scope that makes the host's system the facades' default; <c>null</c> when that is off.</summary>
    private IDisposable? _defaultScope;

    private ActorQueueRegistry? _registry;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var system = services.GetRequiredService<ActorSystem>();
        ActorQueueRuntime.UseLoggerFactory(system, loggerFactory);

        // The registry checks the settings and may refuse them: a host that fails to start must not stay the default.
        _registry = services.GetRequiredService<ActorQueueRegistry>();
        if (options.Value.UseAsDefaultSystem)
        {
            if (ActorQueueRuntime.IsDefaultStarted)
            {
                _log.LogWarning(
                    "ActorQueue's embedded actor system was started before the host: facades created before now without system: run there, not on {System}",
                    system.Name);
            }

            _defaultScope = ActorQueueRuntime.UseAsDefault(system);
        }

        _log.LogInformation("ActorQueue started on actor system {System} with limiters [{Limiters}] and queues [{Queues}]", system.Name,
            string.Join(", ", _registry.LimiterNames), string.Join(", ", options.Value.Queues.Keys));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_registry is not null)
            {
                await _registry.StopAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Dispose();
        }
    }

    /// <summary>Releases the host's system as the facades' default (once); the container disposes the registry itself.</summary>
    public void Dispose() => Interlocked.Exchange(ref _defaultScope, null)?.Dispose();
}
