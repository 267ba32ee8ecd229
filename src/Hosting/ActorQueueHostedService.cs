using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Hosting.Logging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ActorQueue.Hosting;

/// <summary>
/// Ties ActorQueue to the host's lifetime. Registered after Akka.Hosting's service, it starts after the actor system
/// exists and stops the named queues before the system terminates: in <see cref="StopAsync"/> when the host stops its
/// services one after another (so services registered after it have stopped first), in <see cref="StoppingAsync"/>
/// when <see cref="HostOptions.ServicesStopConcurrently"/> is set (every StoppingAsync completes before any service's
/// StopAsync, Akka.Hosting's included). The host's token ends the queues' grace period: work in flight runs until
/// <see cref="HostOptions.ShutdownTimeout"/>, is then cancelled, and the stop returns at once, naming in a warning the
/// queues that still had work running; their items still held go to the error handlers as failed when the queues are
/// disposed. The system then stops being the facades' default. A host disposed without a stop (its start failed after
/// this service started) releases the default when the container disposes this service.
/// </summary>
internal sealed class ActorQueueHostedService(IServiceProvider services, IOptions<ActorQueueOptions> options, ILoggerFactory loggerFactory)
    : IHostedLifecycleService, IDisposable
{
    private readonly ILogger _log = loggerFactory.CreateLogger("ActorQueue.Hosting");

    /// <summary>The scope that makes the host's system the facades' default; <c>null</c> when that is off.</summary>
    private IDisposable? _defaultScope;

    private ActorQueueRegistry? _registry;

    /// <summary>The system the host's <see cref="ILoggerFactory"/> was attached to at the start; <c>null</c> once detached.</summary>
    private ActorSystem? _system;

    /// <summary>1 once the warning about queues still running at the host's deadline has been logged (it is logged once).</summary>
    private int _deadlineWarned;

    /// <summary>Whether the host stops its services concurrently (<see cref="HostOptions.ServicesStopConcurrently"/>).</summary>
    private bool StopsConcurrently => services.GetService<IOptions<HostOptions>>()?.Value.ServicesStopConcurrently == true;

    /// <summary>Nothing to do before the start.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Makes the registry (checking the settings), logs a warning when the actor system was not set up with
    /// <see cref="ActorQueueAkkaBuilderExtensions.WithActorQueue"/>, and makes the system the facades' default (once:
    /// a second start of a running host does not make it again, so one stop releases it).
    /// </summary>
    /// <param name="cancellationToken">Unused: the start does not wait.</param>
    /// <returns>A completed task.</returns>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var system = services.GetRequiredService<ActorSystem>();
        ActorQueueRuntime.UseLoggerFactory(system, loggerFactory);
        Volatile.Write(ref _system, system);
        WarnIfNotSetUp(system);

        // The registry checks the settings and may refuse them: a host that fails to start must not stay the default.
        _registry = services.GetRequiredService<ActorQueueRegistry>();

        // Once: a host started again while it runs (StartAsync, then RunAsync, which starts it again) pushes the default
        // once, so the stop's one release leaves no terminated system the default.
        if (options.Value.UseAsDefaultSystem && Volatile.Read(ref _defaultScope) is null)
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

    /// <summary>Nothing to do once started.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// With <see cref="HostOptions.ServicesStopConcurrently"/>, stops the queues (as <see cref="StopAsync"/> does
    /// otherwise): the host runs every service's StoppingAsync before any StopAsync, so the queues stop before
    /// Akka.Hosting's StopAsync terminates the system. Without it, does nothing: the queues stop in StopAsync, after the
    /// services registered after ActorQueue (your producers) have stopped.
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown token: cancelled at <see cref="HostOptions.ShutdownTimeout"/>, it ends the grace period.</param>
    /// <returns>A task that completes when the queues have stopped, or at once when the token is cancelled.</returns>
    public Task StoppingAsync(CancellationToken cancellationToken) => StopsConcurrently ? StopQueuesAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>
    /// Stops the queues (or, when <see cref="StoppingAsync"/> has, waits for that stop), then releases the system as the
    /// facades' default.
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown token: cancelled at <see cref="HostOptions.ShutdownTimeout"/>, it ends the grace period.</param>
    /// <returns>A task that completes when the queues have stopped, or at once when the token is cancelled.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await StopQueuesAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Dispose();
        }
    }

    /// <summary>Nothing to do once stopped.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Releases the host's system as the facades' default and detaches the host's <see cref="ILoggerFactory"/> from it
    /// (once each): the factory is disposed with the host, and a system the application owns outlives it, its facades
    /// made afterwards logging to Serilog again. The container disposes the registry itself.
    /// </summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _defaultScope, null)?.Dispose();
        if (Interlocked.Exchange(ref _system, null) is { } system)
        {
            var extension = ActorQueueExtension.Get(system);
            if (ReferenceEquals(extension.LoggerFactory, loggerFactory))
            {
                extension.LoggerFactory = null; // another host's factory attached since stays
            }
        }
    }

    /// <summary>
    /// Stops the registry's queues (the first call starts the stop, a later one waits for it) until
    /// <paramref name="cancellationToken"/> is cancelled; then returns without waiting for workers that ignore their
    /// token, and warns (once) naming the queues still running.
    /// </summary>
    private async Task StopQueuesAsync(CancellationToken cancellationToken)
    {
        if (_registry is not { } registry)
        {
            return;
        }

        var stop = registry.StopAsync(cancellationToken);
        try
        {
            await stop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (stop.IsCompleted)
            {
                await stop.ConfigureAwait(false); // stopped as the deadline came: its own outcome
                return;
            }

            if (Interlocked.Exchange(ref _deadlineWarned, 1) == 0)
            {
                _log.LogWarning(
                    "The host's shutdown deadline (HostOptions.ShutdownTimeout) passed with work still running on ActorQueue queues [{Queues}]: their workers' tokens are cancelled and the host stops without waiting for them; the queues are disposed, and each item still held or queued goes to its queue's error handler as failed (ObjectDisposedException, counted in Metrics.Discarded)",
                    string.Join(", ", registry.QueuesStillStopping));
            }
        }
    }

    /// <summary>
    /// Warns when the actor system was set up without <see cref="ActorQueueAkkaBuilderExtensions.WithActorQueue"/> (its
    /// marker key is missing), naming what that leaves out: the start goes on, as it did before the check.
    /// </summary>
    private void WarnIfNotSetUp(ActorSystem system)
    {
        var config = system.Settings.Config;
        if (config.GetBoolean(ActorQueueAkkaBuilderExtensions.MarkerKey, false))
        {
            return;
        }

        var missing = new List<string>();
        if (!system.Settings.Loggers.Any(logger => logger.Contains(typeof(LoggerFactoryLogger).FullName!, StringComparison.Ordinal)))
        {
            missing.Add($"Akka's log events do not reach the host's ILoggerFactory (akka.loggers = [{string.Join(", ", system.Settings.Loggers)}])");
        }

        if (config.GetBoolean("akka.coordinated-shutdown.run-by-clr-shutdown-hook", false))
        {
            missing.Add("Akka's process-exit hook (akka.coordinated-shutdown.run-by-clr-shutdown-hook) is on, so on SIGTERM it terminates the actor system while the host is still stopping the queues");
        }

        if (missing.Count > 0)
        {
            _log.LogWarning(
                "Actor system {System} was set up without WithActorQueue(): {Missing}. Add .WithActorQueue() to its AddAkka(...) builder",
                system.Name, string.Join("; ", missing));
        }
    }
}
